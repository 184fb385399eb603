"""JupyterLab on the workspace, kernel integration, Colab compatibility.

Not built yet.
"""
