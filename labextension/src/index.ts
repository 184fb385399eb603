/**
 * drivelab's JupyterLab extension: the status bar item, the runtime, drive, secrets and jobs
 * panels (left sidebar), and "Run as a drivelab job" (notebook toolbar, command palette).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { describe } from './api';
import { DrivePanel } from './drive';
import { jobsIcon, JobsPanel, runAsJob } from './jobs';
import { RuntimePanel } from './runtime';
import { SecretsPanel } from './secrets';
import { StatusItem } from './status';
import { Panel } from './ui';

const CATEGORY = 'drivelab';
const RUN_AS_JOB = 'drivelab:run-as-job';
const plugin: JupyterFrontEndPlugin<void> = {
  id: '@drivelab/lab:plugin',
  description: "drivelab in the lab: the machine and the drive in the status bar; runtime, drive, secrets and jobs panels.",
  autoStart: true,
  requires: [IStatusBar],
  optional: [ICommandPalette, ILayoutRestorer, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    notebooks: INotebookTracker | null
  ): void => {
    const settings = app.serviceManager.serverSettings;
    const panels: Record<string, Panel> = {
      runtime: new RuntimePanel(settings),
      drive: new DrivePanel(settings),
      secrets: new SecretsPanel(settings),
      jobs: new JobsPanel(settings)
    };
    let rank = 300;
    for (const [name, panel] of Object.entries(panels)) {
      app.shell.add(panel, 'left', { rank: rank++ });
      restorer?.add(panel, panel.id);
      const command = `drivelab:open-${name}`;
      app.commands.addCommand(command, {
        label: `Show drivelab's ${panel.title.caption} panel`,
        execute: () => app.shell.activateById(panel.id)
      });
      palette?.addItem({ command, category: CATEGORY });
    }

    const item = new StatusItem(settings, () => void app.commands.execute('drivelab:open-runtime'));
    statusBar.registerStatusItem('@drivelab/lab:status', { item, align: 'left', rank: 1000 });

    const jobs = panels.jobs as JobsPanel;
    app.commands.addCommand(RUN_AS_JOB, {
      label: 'Run as a drivelab Job',
      caption: 'Run this notebook in the background as a job (drivelab run --detach): it survives closing the lab and resumes after a crash',
      icon: jobsIcon,
      isEnabled: () => !!notebooks?.currentWidget,
      execute: async () => {
        const notebook = notebooks?.currentWidget;
        if (!notebook) {
          return;
        }
        const path = notebook.context.path;
        try {
          if (notebook.context.model.dirty) {
            await notebook.context.save(); // the job runs what is on disk
          }
          const job = await runAsJob(settings, path);
          Notification.success(`Job ${job.run} started: ${path}`, { autoClose: 5000 });
          app.shell.activateById(jobs.id);
          jobs.select(job.run);
        } catch (failure) {
          const { message, hint } = describe(failure);
          Notification.error(`Could not start ${path} as a job: ${message}${hint ? ` (${hint})` : ''}`, { autoClose: false });
        }
      }
    });
    palette?.addItem({ command: RUN_AS_JOB, category: CATEGORY });
    // Enabled while a notebook is open: asked again whenever another one becomes current.
    notebooks?.currentChanged.connect(() => app.commands.notifyCommandChanged(RUN_AS_JOB));

    // The notebook toolbar's button: schema/plugin.json (jupyter.lab.toolbars), which users can change.
  }
};

export default plugin;
