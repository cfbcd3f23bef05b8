// The recruiter's viewer: sign in with the API key (exchanged for a session cookie, never
// kept here), the interviews released to this recruiter now, a player streaming the
// recording with Range requests (the browser's own seeking), the analysis as charts with
// units, and, where something is withheld, the reason in words.
import {session, call, signIn, el, fill} from '/pages/api.js';
import {t, apply, onLanguage} from '/pages/i18n.js';

const $ = id => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
let current = null;   // {id, analysis, refusal, analysisRefusal}

function problem(e) {
  $('problem').textContent = t('common.error') + ': ' + (e.message || e);
  $('problem').classList.remove('hidden');
}

/** A refusal in words, from kiroku's error code and details. */
function reason(e) {
  const d = (e.body && e.body.details) || {};
  const key = 'refusal.' + (e.code || '');
  const text = t(key, {at: d.withdrawn_at || '', country: (d.scope || '').split(':')[1] || ''});
  return text === key ? (e.message || e.code) : text;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** Speech runs on a timeline of `duration` seconds, with second ticks. */
function timeline(runs, duration) {
  const w = 600, h = 56, x = s => 30 + (s / Math.max(duration, 0.001)) * (w - 40);
  const g = svg('svg', {viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img',
    'aria-label': t('recruiter.timeline')});
  g.append(svg('rect', {x: 30, y: 8, width: w - 40, height: 24, class: 'silence'}));
  for (const [a, b] of runs)
    g.append(svg('rect', {x: x(a), y: 8, width: Math.max(1, x(b) - x(a)), height: 24, class: 'speech'}));
  const step = duration > 60 ? 10 : duration > 20 ? 5 : 1;
  for (let s = 0; s <= duration; s += step)
    g.append(svg('text', {x: x(s), y: 48, 'text-anchor': 'middle'}, document.createTextNode(String(s))));
  return g;
}

/** One value per segment as a line with its unit on the axis. */
function line(values, unit, cls) {
  const w = 600, h = 140, pts = values.filter(v => v !== null && Number.isFinite(v));
  const g = svg('svg', {viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img', 'aria-label': unit});
  if (!pts.length) return g;
  // A nearly flat series is drawn flat, not stretched across the whole height.
  const mid = (Math.min(...pts) + Math.max(...pts)) / 2;
  const half = Math.max((Math.max(...pts) - Math.min(...pts)) / 2, Math.abs(mid) * 0.05, 0.5);
  const lo = mid - half, hi = mid + half, span = hi - lo;
  const x = i => 50 + (i / Math.max(values.length - 1, 1)) * (w - 70);
  const y = v => 10 + (1 - (v - lo) / span) * (h - 40);
  const d = values.map((v, i) => (v === null || !Number.isFinite(v)) ? '' :
    `${i && values[i - 1] !== null ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  g.append(svg('path', {d, class: 'line ' + cls}));
  g.append(svg('text', {x: 4, y: y(hi) + 4}, document.createTextNode(hi.toFixed(1) + ' ' + unit)));
  g.append(svg('text', {x: 4, y: y(lo) + 4}, document.createTextNode(lo.toFixed(1) + ' ' + unit)));
  values.forEach((_, i) => g.append(svg('text', {x: x(i), y: h - 6, 'text-anchor': 'middle'},
    document.createTextNode(String(i + 1)))));
  return g;
}

const show = v => v && v.value !== null && v.value !== undefined ? `${v.value} ${v.unit}` : '–';

function renderAnalysis() {
  $('analysis-withheld').classList.add('hidden');
  fill($('summary')); fill($('timeline')); fill($('loudness')); fill($('pitch'));
  if (!current) return;
  if (current.analysisRefusal) {
    $('analysis-withheld').textContent = t('recruiter.withheld') + ': ' + reason(current.analysisRefusal);
    $('analysis-withheld').classList.remove('hidden');
    return;
  }
  const a = current.analysis && current.analysis.analyzers && current.analysis.analyzers['kiroku-builtin'];
  if (!a || !a.interview) { $('summary').textContent = t('recruiter.noanalysis'); return; }
  const r = a.interview;
  $('summary').textContent = t('recruiter.summary', {talk: show(r.talk_time),
    pauses: r.pauses.count, lufs: show(r.loudness.integrated), pitch: show(r.pitch.median)});
  fill($('timeline'), timeline((r.speech_runs && r.speech_runs.value) || [], r.duration.value || 0));
  const segs = (a.segments || []).slice().sort((p, q) => p.segment - q.segment);
  fill($('loudness'), line(segs.map(s => s.report.loudness.integrated.value), 'LUFS', 'loudness'));
  fill($('pitch'), line(segs.map(s => s.report.pitch.median.value), 'Hz', 'pitch'));
}

/** A withheld item's answer as the error shape reason() reads. */
const refusalOf = item => ({code: item.error, message: item.message, body: {details: item.details}});

async function open(id) {
  current = {id};
  await list();  // what is released changes as candidates decide
  $('viewer').classList.remove('hidden');
  $('withheld').classList.add('hidden');
  const path = '/v1/recruiter/interviews/' + encodeURIComponent(id);
  // What is released now, and why not where it is withheld (asking releases nothing).
  let st;
  try { st = await call('GET', path); } catch (e) { current.refusal = e; }
  if (st && !st.items.recording.released) current.refusal = refusalOf(st.items.recording);
  if (current.refusal) {
    $('withheld').textContent = t('recruiter.withheld') + ': ' + reason(current.refusal);
    $('withheld').classList.remove('hidden');
    $('player').removeAttribute('src');
    $('player').load();
  } else {
    // The browser's own player asks with Range as it seeks; each answer is a release.
    $('player').src = path + '/recording';
  }
  if (st && !st.items.analysis.released) current.analysisRefusal = refusalOf(st.items.analysis);
  else if (st) {
    try { current.analysis = await call('GET', path + '/analysis'); }
    catch (e) { current.analysisRefusal = e; }
  }
  renderAnalysis();
}

async function list() {
  const v = await call('GET', '/v1/recruiter/interviews');
  fill($('list'), el('thead', {}, el('tr', {},
      el('th', {scope: 'col', text: 'ID'}), el('th', {scope: 'col', text: t('privacy.when')}),
      el('th', {scope: 'col', text: t('privacy.item')}), el('th', {scope: 'col', text: ''}))),
    el('tbody', {}, v.interviews.length ? v.interviews.map(i => el('tr', {},
      el('td', {text: i.interview_id}), el('td', {text: i.ended_at || ''}),
      el('td', {text: i.items.map(x => x.item).join(', ')}),
      el('td', {}, el('button', {type: 'button', class: 'secondary', 'data-open': i.interview_id,
        text: t('recruiter.open'), onclick: () => open(i.interview_id)}))))
      : [el('tr', {}, el('td', {colspan: 4, text: t('common.none')}))]));
  $('list-section').classList.remove('hidden');
  $('signout').classList.remove('hidden');
  $('signin').classList.add('hidden');
}

async function main() {
  apply();
  onLanguage(() => { renderAnalysis(); if (current && current.refusal) open(current.id); });
  $('signin-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    try {
      await signIn('/v1/session/recruiter', {api_key: $('api-key').value});
      $('api-key').value = '';
      await list();
    } catch (e) { problem(e); }
  });
  $('signout').addEventListener('click', async () => {
    await call('POST', '/v1/session/logout').catch(() => {});
    location.reload();
  });
  const s = await session();
  if (s && s.kind === 'recruiter') await list();
  else $('signin').classList.remove('hidden');
}

main().catch(problem);
