import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

/** What `GET <base_url>drivelab/api/status` answers (`kind: "lab.status"`, version 1). */
interface LabStatus {
  kind: 'lab.status';
  version: number;
  memory: { used: number; total: number };
  cpu: { percent: number; cores: number };
  disk: { free: number; total: number; path: string };
  gpus: Gpu[];
  drive: Drive;
}

interface Gpu {
  index: number;
  name: string;
  memory_used: number | null;
  memory_total: number | null;
  utilization: number | null;
}

interface Drive {
  mode: 'local' | 'mount' | 'sync';
  phase: 'local' | 'starting' | 'live' | 'down' | 'failed' | 'detached';
  remote: string | null;
  pending_uploads: number | null;
  read_only: boolean;
}

const STATUS_PATH = 'drivelab/api/status';
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

/** The server's own words for a failed request: its `error` and `hint`, else the HTTP status. */
async function failure(response: Response): Promise<string> {
  const head = `HTTP ${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as { error?: string; hint?: string };
    return [body.error ?? head, body.hint].filter(Boolean).join('\n');
  } catch {
    return head;
  }
}

/** The status bar item: asks the server every few seconds while the page is visible. */
class StatusItem extends Widget {
  private busy = false;
  private timer = 0;

  constructor(private readonly settings: ServerConnection.ISettings) {
    super();
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
    const url = URLExt.join(this.settings.baseUrl, STATUS_PATH);
    const abort = new AbortController();
    const timeout = window.setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const response = await ServerConnection.makeRequest(url, { signal: abort.signal }, this.settings);
      if (!response.ok) {
        return new Error(await failure(response));
      }
      return (await response.json()) as LabStatus;
    } catch (reason) {
      return reason instanceof Error ? reason : new Error(String(reason));
    } finally {
      window.clearTimeout(timeout);
    }
  }

  private render(status: LabStatus | Error): void {
    if (status instanceof Error) {
      this.node.dataset.state = 'error';
      this.node.textContent = 'drivelab: status unavailable';
      this.node.title = `GET ${STATUS_PATH} failed:\n${status.message}`;
      return;
    }
    try {
      this.node.textContent = statusLine(status);
      this.node.title = statusDetails(status);
      this.node.dataset.state = 'ok';
    } catch (reason) {
      this.render(new Error(`unexpected answer: ${reason}`));
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@drivelab/lab:status',
  description: "The machine's memory, CPU, GPUs, disk and the drive, in the status bar.",
  autoStart: true,
  requires: [IStatusBar],
  activate: (app: JupyterFrontEnd, statusBar: IStatusBar): void => {
    const item = new StatusItem(app.serviceManager.serverSettings);
    statusBar.registerStatusItem(plugin.id, { item, align: 'left', rank: 1000 });
  }
};

export default plugin;
