// The operator's console: regions and their health (spool depth, failing stores), the
// captures live on this node, the delivery outbox, the audit log's verification, and the
// rights requests candidates made, each to be marked done once carried out.
import {session, call, signIn, el, fill, mmss} from '/pages/api.js';
import {t, apply, onLanguage} from '/pages/i18n.js';

const $ = id => document.getElementById(id);
let data = null;

function problem(e) {
  $('problem').textContent = t('common.error') + ': ' + (e.message || e);
  $('problem').classList.remove('hidden');
}

const head = (...cols) => el('thead', {}, el('tr', {}, cols.map(c => el('th', {scope: 'col', text: c}))));
const rows = (list, cols, f) => el('tbody', {}, list.length ? list.map(f)
  : [el('tr', {}, el('td', {colspan: cols, text: t('common.none')}))]);

function render() {
  if (!data) return;
  fill($('regions'), head(t('console.region'), t('console.backend'), t('console.spool'), t('privacy.state')),
    rows(data.health.regions, 4, r => el('tr', {}, el('td', {text: r.region}), el('td', {text: r.backend}),
      el('td', {text: r.spool_bytes === undefined ? '–' : r.spool_bytes + ' B'}),
      el('td', {class: r.failing ? 'bad' : 'ok', text: r.failing ? t('console.failing') + ': ' + r.failing : t('console.healthy')}))));
  fill($('captures'), head('ID', t('console.region'), t('recruiter.list'), t('interview.recorder')),
    rows(data.captures.captures, 4, c => el('tr', {}, el('td', {text: c.interview_id}), el('td', {text: c.region}),
      el('td', {text: c.recruiter}), el('td', {text: mmss(c.media_ms) + ' · ' + c.segments}))));
  const deliveries = data.deliveries.deliveries || [];
  fill($('deliveries'), head('ID', t('privacy.recipient'), t('privacy.item'), t('privacy.state')),
    rows(deliveries, 4, d => el('tr', {}, el('td', {text: d.id}), el('td', {text: d.recruiter}),
      el('td', {text: d.kind}), el('td', {text: d.state + (d.attempts ? ' (' + d.attempts + ')' : '')}))));
  const a = data.audit;
  $('audit').className = 'status ' + (a.ok ? 'ok' : 'bad');
  $('audit').textContent = a.ok ? t('console.audit.ok', {n: a.entries}) : t('console.audit.bad', {why: a.error || ''});
  fill($('requests'), head(t('privacy.when'), 'ID', t('privacy.request.kind'), t('privacy.request.state'), ''),
    rows(data.requests.requests, 5, r => el('tr', {}, el('td', {text: r.created_at}),
      el('td', {text: r.candidate_id}), el('td', {text: r.kind}),
      el('td', {text: r.closed_at ? t('privacy.request.closed') : t('privacy.request.open')}),
      el('td', {}, r.closed_at ? [] : el('button', {type: 'button', class: 'secondary',
        text: t('console.close'), onclick: () => close(r.id)})))));
}

async function load() {
  const [health, captures, deliveries, audit, requests] = await Promise.all([
    call('GET', '/healthz'), call('GET', '/v1/admin/captures'), call('GET', '/v1/admin/deliveries'),
    call('GET', '/v1/admin/audit').then(r => ({ok: true, entries: r.entries}),
      e => ({ok: false, error: e.message})),
    call('GET', '/v1/admin/requests')]);
  data = {health, captures, deliveries, audit, requests};
  $('panels').classList.remove('hidden');
  $('refresh').classList.remove('hidden');
  $('signout').classList.remove('hidden');
  $('signin').classList.add('hidden');
  render();
}

async function close(id) {
  try { await call('POST', '/v1/admin/requests/' + encodeURIComponent(id) + '/close'); await load(); }
  catch (e) { problem(e); }
}

async function main() {
  apply();
  onLanguage(render);
  $('signin-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    try {
      await signIn('/v1/session/operator', {token: $('token').value});
      $('token').value = '';
      await load();
    } catch (e) { problem(e); }
  });
  $('refresh').addEventListener('click', () => load().catch(problem));
  $('signout').addEventListener('click', async () => {
    await call('POST', '/v1/session/logout').catch(() => {});
    location.reload();
  });
  const s = await session();
  if (s && s.kind === 'operator') await load();
  else $('signin').classList.remove('hidden');
}

main().catch(problem);
