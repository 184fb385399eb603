/** The runtime panel: `drivelab runtime`'s table and `drivelab doctor`'s verdict, with its fix. */
import { ServerConnection } from '@jupyterlab/services';

import { Doctor, request, RuntimePanel as RuntimeRows } from './api';
import { fill, h, icon, Panel } from './ui';

export const runtimeIcon = icon(
  'runtime',
  '<path d="M9 2h2v3H9zm4 0h2v3h-2zM9 19h2v3H9zm4 0h2v3h-2zM2 9h3v2H2zm0 4h3v2H2zm17-4h3v2h-3zm0 4h3v2h-3z"/><path d="M5 5h14v14H5zm3 3v8h8V8z"/>'
);

/** Probing the machine is quick; the doctor imports PyTorch in a fresh interpreter and runs on each device. */
const DOCTOR_TIMEOUT_MS = 180000;

export class RuntimePanel extends Panel {
  private readonly table = h('table', { className: 'jp-drivelab-table', 'data-drivelab': 'runtime-table' });
  private readonly verdict = h('div', { className: 'jp-drivelab-verdict', 'data-drivelab': 'doctor' }, 'Not checked yet.');
  private readonly again = h('button', { className: 'jp-mod-styled jp-mod-accept', 'data-drivelab': 'doctor-check', type: 'button' }, 'Check again');
  private checked = false;

  constructor(settings: ServerConnection.ISettings) {
    super(settings, { id: 'drivelab-runtime', label: 'Runtime', name: 'runtime-panel', icon: runtimeIcon });
    this.again.addEventListener('click', () => void this.check());
    this.body.append(
      this.table,
      h('h3', {}, 'Is PyTorch working here?'),
      h('p', { className: 'jp-drivelab-note' }, 'drivelab doctor: the build against this machine, each device used for real.'),
      this.verdict,
      h('div', { className: 'jp-drivelab-actions' }, this.again)
    );
  }

  protected async load(): Promise<void> {
    const rows = await request<RuntimeRows>(this.settings, 'runtime/panel', { timeoutMs: 60000 });
    fill(
      this.table,
      ...rows.rows.map(row =>
        h(
          'tr',
          { className: `jp-drivelab-${row.kind}` },
          h('th', {}, row.kind === 'device' ? `  ${row.label}` : row.label),
          h('td', {}, row.value)
        )
      )
    );
    if (!this.checked) {
      this.checked = true;
      void this.check();
    }
  }

  /** Ask the doctor, showing its checks as they come back; the button asks again. */
  async check(): Promise<void> {
    this.verdict.dataset.state = 'checking';
    fill(this.verdict, 'Checking: importing PyTorch and running on each device…');
    await this.act(this.again, 'Checking…', async () => {
      let doctor: Doctor;
      try {
        doctor = await request<Doctor>(this.settings, 'doctor', { timeoutMs: DOCTOR_TIMEOUT_MS });
      } catch (failure) {
        this.verdict.dataset.state = 'error';
        fill(this.verdict, 'The check did not run.');
        throw failure;
      }
      this.showVerdict(doctor);
    });
  }

  private showVerdict(doctor: Doctor): void {
    const { report } = doctor;
    this.verdict.dataset.state = doctor.ok ? 'ok' : 'problem';
    const failures = report.checks.filter(c => !c.ok);
    fill(
      this.verdict,
      h(
        'p',
        { className: doctor.ok ? 'jp-drivelab-ok' : 'jp-drivelab-bad' },
        doctor.ok
          ? `PyTorch ${report.torch ?? ''} works here: ${report.checks.length} checks passed in ${report.seconds.toFixed(1)} s.`
          : `PyTorch ${report.torch ?? '(not importable)'} has ${failures.length} problem${failures.length === 1 ? '' : 's'} here.`
      ),
      h(
        'ul',
        { className: 'jp-drivelab-checks' },
        ...report.checks.map(c =>
          h(
            'li',
            { className: c.ok ? 'jp-drivelab-ok' : 'jp-drivelab-bad', 'data-check': c.name },
            `${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`,
            c.fix ? h('div', { className: 'jp-drivelab-fix' }, 'fix: ', h('code', {}, c.fix)) : null
          )
        )
      ),
      h('p', { className: 'jp-drivelab-note' }, `Checked ${report.python}.`)
    );
  }
}
