/** What every drivelab panel shares: building DOM, its error box, refreshing while visible, busy buttons. */
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { describe } from './api';

type Child = Node | string | null | undefined | false;
type Props = { [key: string]: unknown };

/**
 * An element: `props` keys with a dash (`data-drivelab`, `aria-label`) become attributes,
 * `on<event>` functions listeners, the others properties (`className`, `type`, `disabled`).
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value as EventListener);
    } else if (key.includes('-')) {
      node.setAttribute(key, String(value));
    } else {
      (node as unknown as Props)[key] = value;
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child);
    }
  }
  return node;
}

/** Replace `node`'s children. */
export function fill(node: HTMLElement, ...children: Child[]): void {
  node.replaceChildren(...(children.filter(c => c !== null && c !== undefined && c !== false) as (Node | string)[]));
}

/** Sizes as the CLI prints them. */
export function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** An ISO time as the reader's local date and time, to the second. */
export function when(iso: string | null | undefined): string {
  if (!iso) {
    return '-';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function icon(name: string, body: string): LabIcon {
  return new LabIcon({
    name: `drivelab:${name}`,
    svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">${body}</g></svg>`
  });
}

export interface PanelOptions {
  id: string;
  label: string;
  /** Its `data-drivelab` name, e.g. `drive-panel`. */
  name: string;
  icon: LabIcon;
  /** Refresh every so many ms while visible (0: only when shown and when asked). */
  pollMs?: number;
}

/**
 * A sidebar panel: a heading, an error box (the server's words and hint) and a body that
 * {@link refresh} fills when the panel shows and, with `pollMs`, every so often while it is visible.
 */
export abstract class Panel extends Widget {
  protected readonly body: HTMLElement;
  private readonly problem: HTMLElement;
  private timer = 0;
  private refreshing: Promise<void> | null = null;

  constructor(
    protected readonly settings: ServerConnection.ISettings,
    private readonly options: PanelOptions
  ) {
    super();
    this.id = options.id;
    this.title.icon = options.icon;
    this.title.caption = options.label;
    this.addClass('jp-drivelab-panel');
    this.node.dataset.drivelab = options.name;
    this.problem = h('div', { className: 'jp-drivelab-problem', role: 'alert', 'data-drivelab': 'error', hidden: true });
    this.body = h('div', { className: 'jp-drivelab-body' });
    this.node.append(h('h2', { className: 'jp-drivelab-heading' }, options.label), this.problem, this.body);
  }

  /** Fill the body from the server; throw to show the failure in the error box. */
  protected abstract load(): Promise<void>;

  /** Load now (once at a time), and show what went wrong, or clear the last failure to load. */
  refresh(): Promise<void> {
    if (this.refreshing === null) {
      this.refreshing = this.load()
        .then(() => this.report(null, 'load'))
        .catch(failure => this.report(failure, 'load'))
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  private failures: { load: unknown; action: unknown } = { load: null, action: null };

  /**
   * Show `failure` (null: none) in the error box. A failed action stays shown until the next action
   * (refreshing does not hide it); a failure to load, until a load succeeds.
   */
  report(failure: unknown, source: 'load' | 'action' = 'action'): void {
    this.failures[source] = failure;
    const shown = this.failures.action ?? this.failures.load;
    if (shown === null) {
      this.problem.hidden = true;
      this.problem.replaceChildren();
      return;
    }
    const { message, hint } = describe(shown);
    fill(
      this.problem,
      h('div', { className: 'jp-drivelab-error' }, `error: ${message}`),
      hint ? h('div', { className: 'jp-drivelab-hint' }, `hint: ${hint}`) : null
    );
    this.problem.hidden = false;
  }

  /**
   * Run `action` with `button` disabled and showing `busy`; its failure goes to the error box.
   * Returns whether it succeeded.
   */
  protected async act(button: HTMLButtonElement, busy: string, action: () => Promise<void>): Promise<boolean> {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = busy;
    this.report(null);
    try {
      await action();
      this.report(null);
      return true;
    } catch (failure) {
      this.report(failure);
      return false;
    } finally {
      button.textContent = label;
      button.disabled = false;
      void this.refresh();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.poll();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.poll();
    }
  }

  protected onBeforeHide(msg: Message): void {
    window.clearTimeout(this.timer);
    super.onBeforeHide(msg);
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    super.dispose();
  }

  private poll(): void {
    window.clearTimeout(this.timer);
    void this.refresh().then(() => {
      if (this.options.pollMs && this.isVisible && !this.isDisposed) {
        window.clearTimeout(this.timer);
        this.timer = window.setTimeout(() => this.poll(), this.options.pollMs);
      }
    });
  }
}
