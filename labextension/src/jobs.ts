/**
 * The jobs panel: `drivelab jobs list` as a table; a job's log that follows while it runs; stop.
 * And {@link runAsJob}: `drivelab run --detach` for a notebook or script of the workspace.
 */
import { ServerConnection } from '@jupyterlab/services';

import { Job, JobLog, request } from './api';
import { fill, h, icon, Panel, when } from './ui';

export const jobsIcon = icon('jobs', '<path d="M3 4h18v2H3zm0 7h12v2H3zm0 7h12v2H3z"/><path d="M17 13.5v7l5-3.5z"/>');

const ACTIVE = ['starting', 'running', 'restarting', 'stopping', 'PENDING', 'RUNNING', 'COMPLETING'];
/** The log pane keeps this much of a log's end. */
const LOG_KEEP = 512 * 1024;
const LOG_POLL_MS = 1000;

/** `drivelab run --detach PATH`: the job's status as the server answers it. */
export function runAsJob(settings: ServerConnection.ISettings, path: string): Promise<Job> {
  return request<Job>(settings, 'jobs', { method: 'POST', body: { path }, timeoutMs: 60000 });
}

export class JobsPanel extends Panel {
  private readonly table = h('table', { className: 'jp-drivelab-table jp-drivelab-jobs', 'data-drivelab': 'jobs-table' });
  private readonly title_ = h('h3', { 'data-drivelab': 'job-title' });
  private readonly stop = h('button', { className: 'jp-mod-styled jp-mod-warn', type: 'button', 'data-drivelab': 'job-stop', hidden: true }, 'Stop');
  private readonly log = h('pre', { className: 'jp-drivelab-log', 'data-drivelab': 'job-log' });
  private selected: string | null = null;
  private offset: number | null = null;
  private logTimer = 0;
  private following = false;

  constructor(settings: ServerConnection.ISettings) {
    super(settings, { id: 'drivelab-jobs', label: 'Jobs', name: 'jobs-panel', icon: jobsIcon, pollMs: 3000 });
    this.stop.addEventListener('click', () => void this.doStop());
    this.body.append(
      h(
        'p',
        { className: 'jp-drivelab-note' },
        'Jobs run in the background and survive closing the lab; a crashed one restarts from its last checkpoint. Start one from a notebook: "Run as a drivelab job" in its toolbar, or ',
        h('code', {}, 'drivelab run --detach SCRIPT'),
        '.'
      ),
      this.table,
      h('div', { className: 'jp-drivelab-job-head' }, this.title_, this.stop),
      this.log
    );
  }

  /** Show `run` (a job just started): its row, its log. */
  select(run: string): void {
    if (this.selected !== run) {
      this.selected = run;
      this.offset = null;
      this.log.textContent = '';
    }
    void this.refresh();
    this.followLog();
  }

  protected async load(): Promise<void> {
    const { jobs } = await request<{ jobs: Job[] }>(this.settings, 'jobs', { timeoutMs: 15000 });
    const head = h('tr', {}, ...['run', 'state', 'restarts', 'last checkpoint', 'started'].map(t => h('th', {}, t)));
    if (!jobs.length) {
      fill(this.table, h('tr', {}, h('td', { className: 'jp-drivelab-note' }, 'No jobs yet.')));
    } else {
      fill(
        this.table,
        head,
        ...jobs.map(job =>
          h(
            'tr',
            {
              'data-run': job.run,
              'data-state': job.state,
              className: job.run === this.selected ? 'jp-mod-selected' : '',
              title: [job.summary, (job.spec?.script ? [job.spec.script, ...(job.spec.args ?? [])] : job.command).join(' ')].filter(Boolean).join('\n'),
              onclick: () => this.select(job.run)
            },
            h('td', {}, job.run),
            h('td', { className: `jp-drivelab-state-${job.state}` }, job.state),
            h('td', {}, `${job.restarts}`),
            h('td', {}, job.last_checkpoint ?? '-'),
            h('td', {}, when(job.started))
          )
        )
      );
    }
    const job = jobs.find(j => j.run === this.selected);
    this.stop.hidden = !job || !ACTIVE.includes(job.state);
    fill(
      this.title_,
      job
        ? `${job.run}: ${job.state}` +
            (job.restarts ? `, ${job.restarts} restart${job.restarts === 1 ? '' : 's'}` : '') +
            (job.last_checkpoint ? `, last checkpoint ${job.last_checkpoint}` : '')
        : this.selected ?? 'Select a job to follow its log.'
    );
    this.title_.title = job ? `started ${when(job.started)}${job.ended ? `, ended ${when(job.ended)}` : ''}` : '';
    if (this.selected && this.isVisible) {
      this.followLog();
    }
  }

  /** Ask for what the log gained since the last answer, every second while the job runs and the panel shows. */
  private followLog(): void {
    if (this.following) {
      return;
    }
    this.following = true;
    window.clearTimeout(this.logTimer);
    const run = this.selected;
    const step = async (): Promise<void> => {
      if (run !== this.selected || this.isDisposed) {
        this.following = false;
        return;
      }
      let active = false;
      try {
        const query = this.offset === null ? '' : `?offset=${this.offset}`;
        const chunk = await request<JobLog>(this.settings, `jobs/${encodeURIComponent(run!)}/log${query}`, { timeoutMs: 15000 });
        if (run !== this.selected) {
          this.following = false;
          return;
        }
        this.append(chunk, this.offset !== null && chunk.offset < this.offset);
        this.offset = chunk.offset;
        active = chunk.active;
      } catch (failure) {
        this.report(failure, 'load');
      }
      if (active && this.isVisible) {
        this.logTimer = window.setTimeout(() => void step(), LOG_POLL_MS);
      } else {
        this.following = false;
      }
    };
    void step();
  }

  private append(chunk: JobLog, restarted: boolean): void {
    const atEnd = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    let text = (restarted ? '' : this.log.textContent ?? '') + chunk.text;
    if (text.length > LOG_KEEP) {
      text = text.slice(text.length - LOG_KEEP);
      text = text.slice(text.indexOf('\n') + 1);
    }
    if (text !== this.log.textContent) {
      this.log.textContent = text;
    }
    this.log.dataset.state = chunk.state;
    if (atEnd) {
      this.log.scrollTop = this.log.scrollHeight;
    }
  }

  private async doStop(): Promise<void> {
    const run = this.selected;
    if (!run) {
      return;
    }
    await this.act(this.stop, 'Stopping…', async () => {
      await request<Job>(this.settings, `jobs/${encodeURIComponent(run)}/stop`, { method: 'POST', timeoutMs: 90000 });
    });
    this.followLog();
  }
}
