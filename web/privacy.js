// The candidate's privacy center: every consent, standing or withdrawn, with one click to
// withdraw and its receipt; the whole history; who received their data, when, on which
// consent or legal basis; and requests for disclosure or erasure the operator sees.
import {session, call, el, fill} from '/pages/api.js';
import {t, apply, preferLanguage, onLanguage} from '/pages/i18n.js';

const $ = id => document.getElementById(id);
let me = null;

function problem(e) {
  $('problem').textContent = t('common.error') + ': ' + (e.message || e);
  $('problem').classList.remove('hidden');
}

const scopeOf = e => e.scope + (e.recipient ? ':' + e.recipient : '') + (e.country ? ':' + e.country : '');
const receiptLink = id => el('a', {href: '/v1/me/consents/' + encodeURIComponent(id) + '/receipt',
  target: '_blank', text: t('privacy.receipt')});
const head = (...keys) => el('thead', {}, el('tr', {}, keys.map(k => el('th', {scope: 'col', text: t(k)}))));
const none = cols => el('tbody', {}, el('tr', {}, el('td', {colspan: cols, text: t('common.none')})));

function render() {
  if (!me) return;
  // One row per scope ever granted: standing (withdraw) or withdrawn.
  const grants = me.consents.history.filter(e => e.action === 'grant');
  const scopes = [...new Set(grants.map(scopeOf))];
  fill($('consents'), head('privacy.scope', 'privacy.state', 'privacy.when', 'privacy.action'),
    scopes.length ? el('tbody', {}, scopes.map(scope => {
      const now = me.consents.current.find(c => c.scope === scope);
      const last = me.consents.history.filter(e => scopeOf(e) === scope).pop();
      return el('tr', {},
        el('td', {text: scope}),
        el('td', {class: now ? 'ok' : 'muted', text: now ? t('privacy.standing') : t('privacy.withdrawn')}),
        el('td', {text: last.at}),
        el('td', {}, now ? [el('button', {type: 'button', class: 'secondary', 'data-withdraw': now.consent_id,
          'aria-label': t('privacy.withdraw') + ' ' + scope, text: t('privacy.withdraw'),
          onclick: () => withdraw(now.consent_id)}), ' ', receiptLink(now.consent_id)] : []));
    })) : none(4));
  fill($('history'), head('privacy.when', 'privacy.action', 'privacy.scope', 'privacy.method'),
    me.consents.history.length ? el('tbody', {}, me.consents.history.map(e => el('tr', {},
      el('td', {text: e.at}), el('td', {text: e.action}), el('td', {text: scopeOf(e)}),
      el('td', {text: (e.method || '') + (e.origin ? ' · ' + e.origin : '')})))) : none(4));
  fill($('provisions'), head('privacy.when', 'privacy.recipient', 'privacy.item', 'privacy.basis'),
    me.provisions.length ? el('tbody', {}, me.provisions.map(p => el('tr', {},
      el('td', {text: p.at}), el('td', {text: p.recipient}), el('td', {text: p.item}),
      el('td', {text: p.consent_event_id ? 'consent ' + p.consent_event_id :
        (p.legal_basis || p.basis || '')})))) : none(4));
  fill($('requests'), head('privacy.when', 'privacy.request.kind', 'privacy.request.state'),
    me.requests.length ? el('tbody', {}, me.requests.map(r => el('tr', {},
      el('td', {text: r.created_at}), el('td', {text: r.kind}),
      el('td', {text: r.closed_at ? t('privacy.request.closed') : t('privacy.request.open')})))) : none(3));
}

async function load() {
  me = await call('GET', '/v1/me');
  render();
}

async function withdraw(id) {
  try {
    await call('POST', '/v1/me/consents/' + encodeURIComponent(id) + '/withdraw');
    await load();
  } catch (e) { problem(e); }
}

async function ask(kind) {
  try {
    await call('POST', '/v1/me/requests', {kind});
    $('request-sent').classList.remove('hidden');
    await load();
  } catch (e) { problem(e); }
}

async function main() {
  apply();
  const s = await session();
  if (!s || s.kind !== 'candidate') { problem(t('common.error')); return; }
  preferLanguage(s.language);
  onLanguage(render);
  $('ask-disclosure').addEventListener('click', () => ask('disclosure'));
  $('ask-erasure').addEventListener('click', () => ask('erasure'));
  await load();
}

main().catch(problem);
