/** The status bar item: memory, CPU, each GPU, free disk and the drive, every few seconds; a click opens the runtime panel. */
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { API_PATH, describe, DriveSummary as Drive, Gpu, LabStatus, request } from './api';

const POLL_MS = 5000;
const TIMEOUT_MS = 15000;

/** Sizes as Colab and most system monitors show them: GB is 2^30 bytes. */
const GB = 1024 ** 3;

function number(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1).replace(/\.0$/, '');
}

function gb(bytes: number): string {
  return number(bytes / GB);
}

function size(bytes: number): string {
  return bytes >= 1000 * GB ? `${number(bytes / GB / 1024)} TB` : `${gb(bytes)} GB`;
}

function percent(value: number): string {
  return `${Math.round(value)}%`;
}

function gpuLine(gpus: Gpu[]): string | null {
  if (gpus.length === 0) {
    return null;
  }
  const usage = (used: number | null, total: number | null, load: number | null): string =>
    [
      used !== null && total !== null ? `${gb(used)}/${gb(total)} GB` : null,
      load !== null ? percent(load) : null
    ]
      .filter(part => part !== null)
      .join(' ') || '?';
  if (gpus.length <= 2) {
    return gpus
      .map(g => `GPU${g.index} ${usage(g.memory_used, g.memory_total, g.utilization)}`)
      .join(' · ');
  }
  // Many GPUs: their memory together, their mean load.
  const sum = (values: (number | null)[]): number | null =>
    values.some(v => v === null) ? null : values.reduce<number>((a, v) => a + (v ?? 0), 0);
  const loads = gpus.map(g => g.utilization).filter((v): v is number => v !== null);
  const load = loads.length ? loads.reduce((a, v) => a + v, 0) / loads.length : null;
  return `${gpus.length} GPUs ${usage(sum(gpus.map(g => g.memory_used)), sum(gpus.map(g => g.memory_total)), load)}`;
}

function driveLine(drive: Drive): string {
  if (drive.mode === 'local') {
    return 'drive local' + (drive.read_only ? ', read-only' : '');
  }
  const parts = [drive.phase === 'live' && drive.mode === 'sync' ? 'syncing' : drive.phase];
  if (drive.read_only) {
    parts.push('read-only');
  }
  if (drive.pending_uploads === null) {
    parts.push('? pending');
  } else if (drive.pending_uploads > 0) {
    parts.push(`${drive.pending_uploads} pending`);
  }
  return `drive ${parts.join(', ')}`;
}

/** The status bar's one line. */
function statusLine(status: LabStatus): string {
  const { memory, cpu, disk } = status;
  return [
    `RAM ${gb(memory.used)}/${gb(memory.total)} GB`,
    `CPU ${percent(cpu.percent)}`,
    gpuLine(status.gpus),
    `disk ${size(disk.free)} free`,
    driveLine(status.drive)
  ]
    .filter(part => part !== null)
    .join(' · ');
}

/** The tooltip: every figure, one line each. */
function statusDetails(status: LabStatus): string {
  const { memory, cpu, disk, drive } = status;
  const exact = (used: number, total: number): string =>
    `${(used / GB).toFixed(2)} of ${(total / GB).toFixed(2)} GB`;
  const lines = [
    `Memory: ${exact(memory.used, memory.total)} used`,
    `CPU: ${cpu.percent.toFixed(1)}% of ${cpu.cores} core${cpu.cores === 1 ? '' : 's'}`
  ];
  for (const g of status.gpus) {
    const memoryPart =
      g.memory_used !== null && g.memory_total !== null
        ? `${exact(g.memory_used, g.memory_total)} used`
        : 'memory unknown';
    const load = g.utilization !== null ? `${g.utilization.toFixed(0)}% busy` : 'load unknown';
    lines.push(`GPU ${g.index} (${g.name}): ${memoryPart}, ${load}`);
  }
  lines.push(`Disk (${disk.path}): ${(disk.free / GB).toFixed(2)} GB free of ${(disk.total / GB).toFixed(2)} GB`);
  if (drive.mode === 'local') {
    lines.push(`Drive: a local folder, no remote${drive.read_only ? ', read-only' : ''}`);
  } else {
    const pending =
      drive.pending_uploads === null ? 'pending uploads unknown' : `${drive.pending_uploads} upload(s) pending`;
    lines.push(
      `Drive: ${drive.mode} of ${drive.remote ?? 'its remote'}, ${drive.phase}, ${pending}` +
        (drive.read_only ? ', read-only' : '')
    );
  }
  return lines.join('\n');
}

/** The status bar item: asks the server every few seconds while the page is visible. */
export class StatusItem extends Widget {
  private busy = false;
  private timer = 0;

  constructor(
    private readonly settings: ServerConnection.ISettings,
    onClick: () => void
  ) {
    super();
    this.node.addEventListener('click', onClick);
    this.node.style.cursor = 'pointer';
    this.addClass('jp-StatusBar-TextItem');
    this.addClass('jp-drivelab-status');
    this.node.dataset.drivelab = 'status';
    this.node.textContent = 'drivelab';
    document.addEventListener('visibilitychange', this.onVisibility);
    void this.tick();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisibility);
    super.dispose();
  }

  private readonly onVisibility = (): void => {
    if (document.visibilityState === 'visible' && !this.busy) {
      window.clearTimeout(this.timer);
      void this.tick();
    }
  };

  private async tick(): Promise<void> {
    if (document.visibilityState === 'visible') {
      this.busy = true;
      try {
        this.render(await this.fetch());
      } finally {
        this.busy = false;
      }
    }
    if (!this.isDisposed) {
      this.timer = window.setTimeout(() => void this.tick(), POLL_MS);
    }
  }

  private async fetch(): Promise<LabStatus | Error> {
    try {
      return await request<LabStatus>(this.settings, 'status', { timeoutMs: TIMEOUT_MS });
    } catch (failure) {
      const { message, hint } = describe(failure);
      return new Error([message, hint].filter(Boolean).join('\n'));
    }
  }

  private render(status: LabStatus | Error): void {
    if (status instanceof Error) {
      this.node.dataset.state = 'error';
      this.node.textContent = 'drivelab: status unavailable';
      this.node.title = `GET ${API_PATH}/status failed:\n${status.message}`;
      return;
    }
    try {
      this.node.textContent = statusLine(status);
      this.node.title = `${statusDetails(status)}\n\nClick for the runtime panel.`;
      this.node.dataset.state = 'ok';
    } catch (reason) {
      this.render(new Error(`unexpected answer: ${reason}`));
    }
  }
}

