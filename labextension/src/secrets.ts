/**
 * The secrets panel: the names `userdata.get(NAME)` can read, never their values; add one
 * (typed in a password field that is emptied once sent) or remove one.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { request, Secret } from './api';
import { fill, h, icon, Panel } from './ui';

export const secretsIcon = icon(
  'secrets',
  '<path d="M12.65 10A5.99 5.99 0 0 0 7 6c-3.31 0-6 2.69-6 6s2.69 6 6 6a5.99 5.99 0 0 0 5.65-4H17v4h4v-4h2v-4H12.65zM7 14c-1.1 0-2-.9-2-2s.9-2 2-2 2 .9 2 2-.9 2-2 2z"/>'
);

export class SecretsPanel extends Panel {
  private readonly list = h('ul', { className: 'jp-drivelab-secrets', 'data-drivelab': 'secrets-list' });
  private readonly name = h('input', {
    className: 'jp-mod-styled',
    type: 'text',
    placeholder: 'NAME, e.g. HF_TOKEN',
    spellcheck: false,
    autocomplete: 'off',
    'data-drivelab': 'secret-name',
    'aria-label': 'Secret name'
  });
  private readonly value = h('input', {
    className: 'jp-mod-styled',
    type: 'password',
    placeholder: 'value',
    autocomplete: 'new-password',
    'data-drivelab': 'secret-value',
    'aria-label': 'Secret value'
  });
  private readonly add = h('button', { className: 'jp-mod-styled jp-mod-accept', type: 'submit', 'data-drivelab': 'secret-add' }, 'Add');
  private readonly outcome = h('div', { className: 'jp-drivelab-outcome', 'data-drivelab': 'secrets-outcome' });

  constructor(settings: ServerConnection.ISettings) {
    super(settings, { id: 'drivelab-secrets', label: 'Secrets', name: 'secrets-panel', icon: secretsIcon, pollMs: 5000 });
    const form = h(
      'form',
      { className: 'jp-drivelab-form', autocomplete: 'off' },
      this.name,
      this.value,
      this.add
    );
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this.doAdd();
    });
    this.body.append(
      h(
        'p',
        { className: 'jp-drivelab-note' },
        'Read in notebooks and jobs with ',
        h('code', {}, "userdata.get('NAME')"),
        '. Kept in this workspace (.drivelab/secrets.json, yours only), never on the drive; values are never shown.'
      ),
      this.list,
      h('h3', {}, 'Add a secret'),
      form,
      this.outcome
    );
  }

  protected async load(): Promise<void> {
    const { secrets } = await request<{ secrets: Secret[] }>(this.settings, 'secrets', { timeoutMs: 15000 });
    fill(
      this.list,
      ...(secrets.length
        ? secrets.map(s =>
            h(
              'li',
              { 'data-secret': s.name },
              h('code', {}, s.name),
              h('span', { className: 'jp-drivelab-note' }, s.env ? ` from $${s.env}` : ' stored'),
              h(
                'button',
                {
                  className: 'jp-mod-styled jp-drivelab-small',
                  type: 'button',
                  title: `Forget ${s.name}`,
                  'data-drivelab': 'secret-remove',
                  onclick: (event: Event) => void this.doRemove(event.currentTarget as HTMLButtonElement, s.name)
                },
                'Remove'
              )
            )
          )
        : [h('li', { className: 'jp-drivelab-note' }, 'No secrets yet.')])
    );
  }

  private async doAdd(): Promise<void> {
    const name = this.name.value.trim();
    fill(this.outcome);
    const done = await this.act(this.add, 'Adding…', async () => {
      const secret = await request<Secret>(this.settings, 'secrets', { method: 'POST', body: { name, value: this.value.value } });
      fill(this.outcome, `Secret ${secret.name} set.`);
    });
    if (done) {
      this.name.value = '';
      this.value.value = '';
    }
  }

  private async doRemove(button: HTMLButtonElement, name: string): Promise<void> {
    const answer = await showDialog({
      title: `Remove the secret ${name}?`,
      body: `Notebooks and jobs asking for ${name} will no longer get it.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
    });
    if (!answer.button.accept) {
      return;
    }
    fill(this.outcome);
    await this.act(button, 'Removing…', async () => {
      await request(this.settings, `secrets/${encodeURIComponent(name)}`, { method: 'DELETE' });
      fill(this.outcome, `Secret ${name} removed.`);
    });
  }
}
