/** The drive panel: the drive's state and the watchdog's last events; Connect, Mount, Flush, Unmount. */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { DetachResult, DriveDocument, FlushResult, request } from './api';
import { bytes, fill, h, icon, Panel, when } from './ui';

export const driveIcon = icon(
  'drive',
  '<path d="M19.35 10.04A7.49 7.49 0 0 0 12 4C9.11 4 6.6 5.64 5.35 8.04A5.994 5.994 0 0 0 0 14c0 3.31 2.69 6 6 6h13c2.76 0 5-2.24 5-5 0-2.64-2.05-4.78-4.65-4.96z"/>'
);

const ATTACHED = ['live', 'down', 'starting'];
const UNMOUNT_TIMEOUT_S = 60;

function uploads(n: number): string {
  return `${n} upload${n === 1 ? '' : 's'}`;
}

export class DrivePanel extends Panel {
  private readonly facts = h('table', { className: 'jp-drivelab-table', 'data-drivelab': 'drive-state' });
  private readonly progress = h('div', { className: 'jp-drivelab-progress', 'data-drivelab': 'drive-progress', hidden: true });
  private readonly outcome = h('div', { className: 'jp-drivelab-outcome', 'data-drivelab': 'drive-outcome' });
  private readonly events = h('ol', { className: 'jp-drivelab-events', 'data-drivelab': 'drive-events' });
  private readonly connect = h('a', { className: 'jp-drivelab-link', 'data-drivelab': 'drive-connect', target: '_blank', rel: 'noopener' }, 'Connect…');
  private readonly mount = this.button('drive-mount', 'Mount');
  private readonly flush = this.button('drive-flush', 'Flush');
  private readonly unmount = this.button('drive-unmount', 'Unmount');
  private drive: DriveDocument | null = null;
  private busy = false;

  constructor(settings: ServerConnection.ISettings) {
    super(settings, { id: 'drivelab-drive', label: 'Drive', name: 'drive-panel', icon: driveIcon, pollMs: 2000 });
    this.connect.href = URLExt.join(settings.baseUrl, 'drivelab/connect');
    this.connect.title = 'Sign in to a cloud drive (Google Drive, Dropbox, OneDrive, Box) or give S3 keys, in a new tab';
    this.mount.addEventListener('click', () => void this.doMount());
    this.flush.addEventListener('click', () => void this.doFlush());
    this.unmount.addEventListener('click', () => void this.doUnmount());
    this.body.append(
      this.facts,
      h('div', { className: 'jp-drivelab-actions' }, this.connect, this.mount, this.flush, this.unmount),
      this.progress,
      this.outcome,
      h('h3', {}, "Watchdog's last events"),
      this.events
    );
  }

  private button(name: string, label: string): HTMLButtonElement {
    return h('button', { className: 'jp-mod-styled', type: 'button', 'data-drivelab': name }, label);
  }

  protected async load(): Promise<void> {
    this.render(await request<DriveDocument>(this.settings, 'drive', { timeoutMs: 15000 }));
  }

  private render(drive: DriveDocument): void {
    this.drive = drive;
    this.node.dataset.phase = drive.phase;
    const rows: [string, string][] =
      drive.mode === 'local'
        ? [
            ['Drive', 'the local folder drive/ (no cloud drive connected)'],
            ['State', drive.read_only ? 'read-only' : 'local']
          ]
        : [
            ['Remote', drive.spec ?? drive.remote ?? '?'],
            ['Mode', drive.mode === 'mount' ? 'mount (FUSE, files fetched when read)' : 'sync (a local copy, synced both ways)'],
            ['State', drive.phase + (drive.read_only ? ', read-only' : '')],
            ['Pending uploads', drive.live ? pendingText(drive) : '-'],
            ['Remounts', `${drive.remounts}`],
            ['In use by', drive.users.map(u => `${u.what} (pid ${u.pid})`).join(', ') || '-']
          ];
    if (drive.errored_files) {
      rows.push(['Failed uploads', `${drive.errored_files} (retried by rclone)`]);
    }
    fill(this.facts, ...rows.map(([label, value]) => h('tr', {}, h('th', {}, label), h('td', { 'data-field': label }, value))));
    if (drive.error) {
      this.facts.append(h('tr', { className: 'jp-drivelab-problem-row' }, h('th', {}, 'Error'), h('td', {}, drive.error)));
    }
    for (const notice of drive.notices) {
      this.facts.append(h('tr', {}, h('th', {}, 'Notice'), h('td', {}, notice)));
    }
    const events = drive.events ?? [];
    fill(
      this.events,
      ...(events.length
        ? [...events].reverse().map(e => {
            const { time, event, ...detail } = e;
            const extra = Object.entries(detail)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ');
            return h('li', {}, h('span', { className: 'jp-drivelab-time' }, when(time)), ` ${event}`, extra ? h('span', { className: 'jp-drivelab-note' }, ` ${extra}`) : null);
          })
        : [h('li', { className: 'jp-drivelab-note' }, 'none yet')])
    );
    const remote = drive.mode !== 'local';
    const attached = ATTACHED.includes(drive.phase);
    if (!this.busy) {
      this.mount.disabled = !remote || attached;
      this.flush.disabled = !remote || drive.phase !== 'live';
      this.unmount.disabled = !remote || !attached;
    }
    if (this.busy && !this.progress.hidden && drive.live && drive.pending_uploads !== null) {
      this.showPending(drive.pending_uploads);
    }
  }

  private pendingAtStart = 0;

  private showPending(pending: number): void {
    this.pendingAtStart = Math.max(this.pendingAtStart, pending);
    const done = this.pendingAtStart - pending;
    fill(
      this.progress,
      h('progress', { max: Math.max(1, this.pendingAtStart), value: this.pendingAtStart ? done : 0 }),
      h('span', { 'data-drivelab': 'drive-pending' }, pending ? ` ${uploads(pending)} pending` : ' nothing pending; confirming')
    );
  }

  /** While `action` runs: every button off, the state polled each second (the progress bar follows it). */
  private async run(button: HTMLButtonElement, busy: string, action: () => Promise<string>): Promise<void> {
    this.busy = true;
    for (const b of [this.mount, this.flush, this.unmount]) {
      b.disabled = true;
    }
    fill(this.outcome);
    const ticker = window.setInterval(() => void this.refresh(), 1000);
    let said = '';
    try {
      await this.act(button, busy, async () => {
        said = await action();
      });
    } finally {
      window.clearInterval(ticker);
      this.busy = false;
      this.progress.hidden = true;
      this.outcome.dataset.state = said ? 'ok' : 'error';
      fill(this.outcome, said);
      await this.refresh();
    }
  }

  private doMount(): Promise<void> {
    return this.run(this.mount, 'Mounting…', async () => {
      this.render(await request<DriveDocument>(this.settings, 'drive/mount', { method: 'POST', timeoutMs: 120000 }));
      return `Mounted: ${this.drive?.spec ?? this.drive?.remote ?? 'the drive'} is live at drive/.`;
    });
  }

  private doFlush(): Promise<void> {
    this.pendingAtStart = 0;
    this.progress.hidden = false;
    this.showPending(this.drive?.pending_uploads ?? 0);  // unknown counts as none yet: the bar follows the next known count
    return this.run(this.flush, 'Flushing…', async () => {
      const result = await request<FlushResult>(this.settings, 'drive/flush', { method: 'POST', timeoutMs: 0 });
      return `Flushed: ${result.files} file${result.files === 1 ? '' : 's'} (${bytes(result.bytes)}) landed in ${result.seconds.toFixed(1)} s; nothing pending.`;
    });
  }

  private doUnmount(): Promise<void> {
    return this.run(this.unmount, 'Unmounting…', async () => {
      const result = await request<DetachResult>(this.settings, 'drive/unmount', { method: 'POST', timeoutMs: (UNMOUNT_TIMEOUT_S + 30) * 1000 });
      if (result.pending) {
        return `Unmounted with ${uploads(result.pending)} pending (${result.reason ?? 'not landed in time'}): kept in ${result.cache ?? "this machine's drive cache"}, they upload at the next mount.`;
      }
      return `Flushed (${result.files} file${result.files === 1 ? '' : 's'}) and unmounted.`;
    });
  }
}

/** The pending count as measured, or "unknown" with the last known count and its age: never a made-up zero. */
function pendingText(drive: DriveDocument): string {
  if (drive.pending_uploads === null) {
    const last = drive.last_stats;
    const known = last && last.pending_uploads !== null ? `; ${last.pending_uploads} as of ${Math.round(last.age)} s ago` : '';
    return `unknown (rclone not answering${known})`;
  }
  return `${drive.pending_uploads}` + (drive.uploading ? ` (${drive.uploading} uploading now)` : '');
}
