// The candidate's interview page: the privacy notice, each purpose as its own choice, the
// signed receipts, then the recorder (kiroku-recorder.js) with "saved up to mm:ss" from
// kiroku's acknowledgements and a warning while the connection is down.
import {session, call, el, fill, mmss} from '/pages/api.js';
import {t, apply, preferLanguage, onLanguage} from '/pages/i18n.js';
import {KirokuRecorder} from '/pages/kiroku-recorder.js';

const $ = id => document.getElementById(id);
let me = null;
let recorder = null;
let stream = null;
let saved = 0;
let ended = null;

function problem(e) {
  $('problem').textContent = t('common.error') + ': ' + (e.message || e);
  $('problem').classList.remove('hidden');
}

function standing(scope) {
  return me.consents.current.find(c => c.scope === scope);
}

/** The purposes offered, each with the scope kiroku records for it. */
function purposes() {
  const list = [
    {scope: 'record', body: {scope: 'record'}, text: t('scope.record')},
    {scope: 'analyze', body: {scope: 'analyze'}, text: t('scope.analyze')},
  ];
  if (me.recruiter) {
    const who = me.recruiter.handle;
    list.push({scope: 'share.recording:' + who, body: {scope: 'share.recording', recipient: who},
      text: t('scope.share.recording', {who})});
    list.push({scope: 'share.analysis:' + who, body: {scope: 'share.analysis', recipient: who},
      text: t('scope.share.analysis', {who})});
    if (me.recruiter.country !== me.home_country) {
      const country = me.recruiter.country;
      list.push({scope: 'transfer:' + country, body: {scope: 'transfer', country},
        text: t('scope.transfer', {who, country})});
    }
  }
  return list;
}

function render() {
  if (!me) return;
  const n = me.notice;
  $('notice-link').textContent = n ? t('interview.notice.read', {id: n.id}) : '-';
  if (n) $('notice-link').href = n.url;
  fill($('choice-list'), purposes().map((p, i) => {
    const id = 'purpose-' + i;
    const on = !!standing(p.scope);
    return el('div', {class: 'choice'},
      el('input', {type: 'checkbox', id, 'data-scope': p.scope, checked: on, disabled: on}),
      el('label', {for: id, text: p.text}));
  }));
  $('start').disabled = !standing('record') || !!recorder;
  if (saved) $('saved').textContent = t('interview.saved', {t: mmss(saved)});
  if (ended && !ended.error)
    $('done').textContent = t('interview.done', {t: mmss(ended.media_ms), n: ended.segments});
}

async function load() {
  me = await call('GET', '/v1/me');
  render();
}

async function grant(ev) {
  ev.preventDefault();
  $('grant').disabled = true;
  try {
    const receipts = [];
    for (const p of purposes()) {
      const box = document.querySelector(`[data-scope="${CSS.escape(p.scope)}"]`);
      if (!box || !box.checked || standing(p.scope)) continue;
      const g = await call('POST', '/v1/me/consents', {...p.body, notice: me.notice && me.notice.id});
      receipts.push({scope: p.scope, at: g.event.at, id: g.consent_id});
    }
    await load();
    if (receipts.length) {
      fill($('receipts'), el('p', {text: t('interview.granted')}), el('ul', {},
        receipts.map(r => el('li', {}, el('a', {
          href: '/v1/me/consents/' + encodeURIComponent(r.id) + '/receipt', target: '_blank',
          text: t('interview.receipt', {scope: r.scope, at: r.at})})))));
    }
  } catch (e) { problem(e); }
  $('grant').disabled = false;
}

async function start() {
  if (!standing('record')) { problem(t('interview.needs.record')); return; }
  $('start').disabled = true;
  try {
    stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
    $('preview').srcObject = stream;
    const mimeType = KirokuRecorder.pickMimeType();
    const created = await call('POST', '/v1/me/interviews',
      {content_type: (mimeType.split(';')[0] || 'video/webm')});
    recorder = new KirokuRecorder({
      interviewId: created.interview_id, ingestToken: created.ingest_token,
      resumeToken: created.resume_token, mimeType,
      onSaved: ms => { saved = ms; render(); },
      onConnection: up => {
        $('connection').textContent = up ? t('interview.reconnected') : t('interview.offline');
        $('connection').classList.remove('quiet');
        if (up) setTimeout(() => $('connection').classList.add('quiet'), 3000);
      },
      onEnded: info => {
        ended = info;
        if (info.error) problem(t('interview.ended.error', {why: info.message || info.error}));
        else $('done').classList.remove('hidden');
        render();
      },
    });
    window.kirokuRecorder = recorder; // for the page's tests and for support
    await recorder.start(stream);
    $('stop').disabled = false;
  } catch (e) { problem(e); $('start').disabled = false; }
}

async function stop() {
  $('stop').disabled = true;
  const info = await recorder.stop();
  if (stream) for (const track of stream.getTracks()) track.stop();
  ended = info;
  render();
}

async function main() {
  apply();
  const s = await session();
  if (!s || s.kind !== 'candidate') { problem(t('common.error')); return; }
  preferLanguage(s.language);
  onLanguage(render);
  $('choices').addEventListener('submit', grant);
  $('start').addEventListener('click', start);
  $('stop').addEventListener('click', stop);
  await load();
}

main().catch(problem);
