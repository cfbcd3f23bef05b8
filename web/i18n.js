// Japanese and English for every page. An element with data-i18n="key" shows that text;
// data-i18n-placeholder and data-i18n-label set a placeholder and an aria-label. The
// language is ?lang=, else the session's, else the browser's; the header's button switches.
const TEXT = {
  en: {
    'lang.switch': '日本語',
    'lang.switch.label': 'Switch to Japanese',
    'common.signout': 'Sign out',
    'common.loading': 'Loading…',
    'common.none': 'None yet.',
    'common.error': 'Something went wrong',
    'interview.title': 'Your interview',
    'interview.notice': 'Privacy notice',
    'interview.notice.read': 'Read the privacy notice (version {id})',
    'interview.notice.summary': 'Your interview is recorded only if you allow it. The recording is sealed with a key of your own and kept in the region of your home country. It is analysed, shared with a company or sent abroad only for the purposes you choose below, and you can withdraw any of them, see who received your data, and ask for a copy or for erasure in your privacy center.',
    'interview.choices': 'What you allow',
    'interview.choices.help': 'Each purpose is its own choice. Recording is needed to take the interview; the others are up to you, and you can withdraw any of them later in your privacy center.',
    'scope.record': 'Record my voice and video for this interview',
    'scope.analyze': 'Analyse my recording (speech and silence, loudness, pitch)',
    'scope.share.recording': 'Share my recording with {who}',
    'scope.share.analysis': 'Share the analysis of my recording with {who}',
    'scope.transfer': 'Allow my data to be sent to {country}, where {who} receives it',
    'scope.improve': 'Use my recording to improve the service',
    'interview.grant': 'Give my consent',
    'interview.granted': 'Consent recorded. Your signed receipts:',
    'interview.receipt': 'Receipt for “{scope}”, {at}',
    'interview.recorder': 'Recording',
    'interview.preview': 'Camera preview',
    'interview.start': 'Start recording',
    'interview.stop': 'Stop and finish',
    'interview.saved': 'Saved up to {t}',
    'interview.offline': 'Connection lost. Keep going: your recording continues and is sent when the connection is back.',
    'interview.reconnected': 'Connection restored.',
    'interview.done': 'Your interview was saved: {t} in {n} parts. Thank you.',
    'interview.needs.record': 'Recording needs your consent to record first.',
    'interview.ended.error': 'The recording stopped: {why}',
    'interview.privacy': 'Your privacy center',
    'privacy.title': 'Your privacy center',
    'privacy.consents': 'Your consents',
    'privacy.scope': 'Purpose', 'privacy.state': 'State', 'privacy.when': 'When',
    'privacy.standing': 'Given', 'privacy.withdrawn': 'Withdrawn',
    'privacy.withdraw': 'Withdraw',
    'privacy.receipt': 'Receipt',
    'privacy.history': 'History',
    'privacy.action': 'Action', 'privacy.method': 'How',
    'privacy.provisions': 'Who received your data',
    'privacy.recipient': 'Company', 'privacy.item': 'What', 'privacy.basis': 'On what basis',
    'privacy.requests': 'Your requests',
    'privacy.request.disclosure': 'Ask for a copy of all my data',
    'privacy.request.erasure': 'Ask to erase all my data',
    'privacy.request.sent': 'Request sent. The operator will carry it out.',
    'privacy.request.kind': 'Request', 'privacy.request.state': 'State',
    'privacy.request.open': 'Open', 'privacy.request.closed': 'Done',
    'privacy.interview': 'Back to your interview',
    'recruiter.title': 'Interviews you may see',
    'recruiter.signin': 'Sign in',
    'recruiter.key': 'API key',
    'recruiter.key.help': 'Your key is exchanged for a session; this page does not keep it.',
    'recruiter.list': 'Interviews',
    'recruiter.open': 'Open',
    'recruiter.player': 'Recording',
    'recruiter.analysis': 'Analysis',
    'recruiter.timeline': 'Speech and silence (seconds)',
    'recruiter.loudness': 'Loudness per segment (LUFS)',
    'recruiter.pitch': 'Median pitch per segment (Hz)',
    'recruiter.summary': 'Talk time {talk} · pauses {pauses} · loudness {lufs} · median pitch {pitch}',
    'recruiter.withheld': 'Withheld',
    'recruiter.noanalysis': 'No analysis is shared with you for this interview.',
    'refusal.share_consent_withdrawn': 'The candidate withdrew consent to share this with you on {at}.',
    'refusal.no_share_consent': 'The candidate has not consented to share this with you.',
    'refusal.analyze_consent_withdrawn': 'The candidate withdrew consent to analysis.',
    'refusal.no_transfer_consent': 'The candidate has not consented to sending their data to {country}.',
    'refusal.candidate_erased': 'The candidate’s data was erased at their request.',
    'refusal.recording_expired': 'The recording was deleted when its retention ran out.',
    'refusal.recipient_revoked': 'The operator revoked your company as a recipient.',
    'refusal.unknown_interview': 'There is no such interview for you.',
    'console.title': 'Operator console',
    'console.token': 'Operator token',
    'console.regions': 'Regions',
    'console.region': 'Region', 'console.backend': 'Store', 'console.spool': 'Spool',
    'console.failing': 'Failing', 'console.healthy': 'Healthy',
    'console.captures': 'Live captures',
    'console.deliveries': 'Delivery outbox',
    'console.audit': 'Audit log',
    'console.audit.ok': 'Verified: {n} entries, chain and checkpoints intact.',
    'console.audit.bad': 'Verification failed: {why}',
    'console.requests': 'Rights requests',
    'console.close': 'Mark done',
    'console.refresh': 'Refresh',
  },
  ja: {
    'lang.switch': 'English',
    'lang.switch.label': '英語に切り替える',
    'common.signout': 'サインアウト',
    'common.loading': '読み込み中…',
    'common.none': 'まだありません。',
    'common.error': 'エラーが発生しました',
    'interview.title': 'あなたの面接',
    'interview.notice': 'プライバシーポリシー',
    'interview.notice.read': 'プライバシーポリシー（版 {id}）を読む',
    'interview.notice.summary': '面接は、あなたが同意した場合にのみ録画されます。録画はあなた専用の鍵で封印され、お住まいの国のリージョンに保管されます。分析、企業への提供、国外への移転は、下で選んだ目的に限って行われます。いつでも撤回でき、提供先の確認、開示や消去の請求はプライバシーセンターから行えます。',
    'interview.choices': '同意する内容',
    'interview.choices.help': '目的ごとに個別に選べます。面接を受けるには録画への同意が必要です。その他は任意で、後からプライバシーセンターでいつでも撤回できます。',
    'scope.record': 'この面接の音声と映像を録画する',
    'scope.analyze': '録画を分析する（発話と無音、音量、声の高さ）',
    'scope.share.recording': '録画を {who} に提供する',
    'scope.share.analysis': '録画の分析結果を {who} に提供する',
    'scope.transfer': '{who} が受け取る国（{country}）へのデータの移転を認める',
    'scope.improve': 'サービス改善のために録画を利用する',
    'interview.grant': '同意する',
    'interview.granted': '同意を記録しました。署名付きの受領書:',
    'interview.receipt': '「{scope}」の受領書（{at}）',
    'interview.recorder': '録画',
    'interview.preview': 'カメラのプレビュー',
    'interview.start': '録画を開始',
    'interview.stop': '停止して終了',
    'interview.saved': '{t} まで保存済み',
    'interview.offline': '接続が切れました。そのまま続けてください。録画は続いており、接続が戻ると送信されます。',
    'interview.reconnected': '接続が回復しました。',
    'interview.done': '面接を保存しました（{t}、{n} 個に分割）。ありがとうございました。',
    'interview.needs.record': '録画するには、まず録画への同意が必要です。',
    'interview.ended.error': '録画が止まりました: {why}',
    'interview.privacy': 'プライバシーセンター',
    'privacy.title': 'プライバシーセンター',
    'privacy.consents': 'あなたの同意',
    'privacy.scope': '目的', 'privacy.state': '状態', 'privacy.when': '日時',
    'privacy.standing': '同意中', 'privacy.withdrawn': '撤回済み',
    'privacy.withdraw': '撤回する',
    'privacy.receipt': '受領書',
    'privacy.history': '履歴',
    'privacy.action': '操作', 'privacy.method': '方法',
    'privacy.provisions': 'あなたのデータの提供先',
    'privacy.recipient': '提供先', 'privacy.item': '内容', 'privacy.basis': '根拠',
    'privacy.requests': 'あなたの請求',
    'privacy.request.disclosure': '保有データの開示を請求する',
    'privacy.request.erasure': 'データの消去を請求する',
    'privacy.request.sent': '請求を送りました。運営者が対応します。',
    'privacy.request.kind': '請求', 'privacy.request.state': '状態',
    'privacy.request.open': '受付済み', 'privacy.request.closed': '完了',
    'privacy.interview': '面接に戻る',
    'recruiter.title': '閲覧できる面接',
    'recruiter.signin': 'サインイン',
    'recruiter.key': 'API キー',
    'recruiter.key.help': 'キーはセッションと引き換えられ、このページには保存されません。',
    'recruiter.list': '面接',
    'recruiter.open': '開く',
    'recruiter.player': '録画',
    'recruiter.analysis': '分析',
    'recruiter.timeline': '発話と無音（秒）',
    'recruiter.loudness': 'セグメントごとの音量（LUFS）',
    'recruiter.pitch': 'セグメントごとの声の高さの中央値（Hz）',
    'recruiter.summary': '発話時間 {talk} ・ 間 {pauses} 回 ・ 音量 {lufs} ・ 声の高さ {pitch}',
    'recruiter.withheld': '提供されていません',
    'recruiter.noanalysis': 'この面接の分析は提供されていません。',
    'refusal.share_consent_withdrawn': '候補者は {at} にあなたへの提供の同意を撤回しました。',
    'refusal.no_share_consent': '候補者はあなたへの提供に同意していません。',
    'refusal.analyze_consent_withdrawn': '候補者は分析への同意を撤回しました。',
    'refusal.no_transfer_consent': '候補者は {country} へのデータの移転に同意していません。',
    'refusal.candidate_erased': '候補者の請求によりデータは消去されました。',
    'refusal.recording_expired': '保存期間が過ぎたため録画は削除されました。',
    'refusal.recipient_revoked': '運営者があなたの会社への提供を停止しました。',
    'refusal.unknown_interview': 'この面接はありません。',
    'console.title': '運営コンソール',
    'console.token': 'オペレータートークン',
    'console.regions': 'リージョン',
    'console.region': 'リージョン', 'console.backend': '保存先', 'console.spool': 'スプール',
    'console.failing': '障害', 'console.healthy': '正常',
    'console.captures': '録画中',
    'console.deliveries': '配信キュー',
    'console.audit': '監査ログ',
    'console.audit.ok': '検証済み: {n} 件、チェーンとチェックポイントは完全です。',
    'console.audit.bad': '検証に失敗しました: {why}',
    'console.requests': '本人からの請求',
    'console.close': '完了にする',
    'console.refresh': '更新',
  },
};

let lang = null;
const listeners = [];

/** The language in use: `ja` or `en`. */
export function language() {
  if (lang) return lang;
  const q = new URLSearchParams(location.search).get('lang');
  if (q === 'ja' || q === 'en') lang = q;
  else lang = (navigator.language || 'en').toLowerCase().startsWith('ja') ? 'ja' : 'en';
  return lang;
}

/** Sets the language (a session's own, say) unless the URL chose one. */
export function preferLanguage(l) {
  const q = new URLSearchParams(location.search).get('lang');
  if (!q && (l === 'ja' || l === 'en')) lang = l;
  apply();
}

/** The text of `key` with {name} filled from `vars`. */
export function t(key, vars) {
  const text = (TEXT[language()] && TEXT[language()][key]) || TEXT.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (vars && vars[k] !== undefined ? vars[k] : ''));
}

/** Calls `f` after every language switch (pages re-render their dynamic parts). */
export function onLanguage(f) { listeners.push(f); }

/** Fills every data-i18n element of the document and wires the language button. */
export function apply() {
  document.documentElement.lang = language();
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll('[data-i18n-placeholder]'))
    e.placeholder = t(e.dataset.i18nPlaceholder);
  for (const e of document.querySelectorAll('[data-i18n-label]'))
    e.setAttribute('aria-label', t(e.dataset.i18nLabel));
  const button = document.getElementById('lang');
  if (button && !button.dataset.wired) {
    button.dataset.wired = '1';
    button.addEventListener('click', () => {
      lang = language() === 'ja' ? 'en' : 'ja';
      apply();
      for (const f of listeners) f();
    });
  }
}
