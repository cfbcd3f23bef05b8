// kiroku's reference recorder: a browser's MediaRecorder streamed to kiroku over its
// WebSocket ingest protocol, with acknowledgements and resume. It depends on nothing else:
// a front-end can copy this file as it is.
//
//   import {KirokuRecorder} from '/pages/kiroku-recorder.js';
//   const rec = new KirokuRecorder({
//     interviewId, ingestToken, resumeToken,       // from POST /v1/interviews (or /v1/me/interviews)
//     onSaved: (ms) => …,      // media time kiroku has stored durably, after each acknowledgement
//     onConnection: (up) => …, // false when the socket dropped, true when it is back
//   });
//   await rec.start(mediaStream);  // records and streams
//   const ended = await rec.stop(); // sends {"type":"finish"}; resolves with capture.ended
//
// How it keeps the recording whole when the connection drops: MediaRecorder keeps running;
// every chunk stays in the page until kiroku acknowledges the bytes that hold it
// (`received_bytes` of `segment.stored`). A dropped socket is reopened with the resume token;
// kiroku's first message says how many bytes it holds (`stream.resumed`), and the recorder
// resends from exactly there, so the interview goes on as one recording with no gap.

const RETRY_MS = [250, 500, 1000, 2000, 3000, 5000];

export class KirokuRecorder {
  constructor(opts) {
    this.interviewId = opts.interviewId;
    this.ingestToken = opts.ingestToken;
    this.resumeToken = opts.resumeToken;
    this.timeslice = opts.timeslice || 500;
    this.mimeType = opts.mimeType || KirokuRecorder.pickMimeType();
    this.onSaved = opts.onSaved || (() => {});
    this.onConnection = opts.onConnection || (() => {});
    this.onEnded = opts.onEnded || (() => {});
    this.base = opts.base || location.origin.replace(/^http/, 'ws');
    this.chunks = [];      // [{offset, blob}] not yet acknowledged, in order
    this.total = 0;        // bytes recorded so far
    this.sentTo = 0;       // bytes handed to the current socket
    this.acked = 0;        // bytes kiroku holds durably
    this.savedMs = 0;
    this.socket = null;
    this.ready = false;    // the current socket may take media
    this.recording = false;
    this.finishing = false;
    this.ended = null;
    this.retries = 0;
    this.endedPromise = new Promise(res => { this.resolveEnded = res; });
  }

  /** The first container and codecs this browser records that kiroku takes. */
  static pickMimeType() {
    const wanted = ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp9,opus', 'video/webm',
      'video/mp4;codecs=avc1,mp4a.40.2', 'video/mp4'];
    return wanted.find(t => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || '';
  }

  /** The content type kiroku is told: the container of what the recorder really makes. */
  contentType() {
    const t = ((this.recorder && this.recorder.mimeType) || this.mimeType || 'video/webm')
      .split(';')[0].trim();
    const codecs = (this.recorder && this.recorder.mimeType) || '';
    // Chrome records H.264 in Matroska and says so; kiroku's profile for it is Matroska.
    if (/avc1|h264/i.test(codecs) && t === 'video/webm') return 'video/x-matroska';
    return t || 'video/webm';
  }

  async start(stream) {
    this.recorder = new MediaRecorder(stream, this.mimeType ? {mimeType: this.mimeType} : {});
    this.recorder.ondataavailable = e => { if (e.data && e.data.size) this.enqueue(e.data); };
    this.stopped = new Promise(res => { this.recorder.onstop = res; });
    this.recorder.onstart = () => { this.startedAt = performance.now(); };
    this.recording = true;
    this.recorder.start(this.timeslice);
    this.connect(false);
  }

  /** Stops recording; once every byte is sent, asks kiroku to finish. Resolves with
   *  kiroku's `capture.ended`. */
  async stop() {
    if (this.recording) {
      this.recording = false;
      // How long the recorder recorded, for the page (and its tests) to compare with
      // what kiroku stored.
      this.recordedMs = performance.now() - (this.startedAt || performance.now());
      this.recorder.stop();
      await this.stopped;
    }
    this.finishing = true;
    this.pump();
    return this.endedPromise;
  }

  enqueue(blob) {
    this.chunks.push({offset: this.total, blob});
    this.total += blob.size;
    this.pump();
  }

  connect(resume) {
    const q = resume
      ? 'resume=' + encodeURIComponent(this.resumeToken)
      : 'token=' + encodeURIComponent(this.ingestToken) +
        '&content_type=' + encodeURIComponent(this.contentType());
    const ws = new WebSocket(`${this.base}/v1/interviews/${this.interviewId}/stream?${q}`);
    ws.binaryType = 'arraybuffer';
    this.socket = ws;
    this.ready = false;
    ws.onopen = () => {
      if (!resume) { this.ready = true; this.sentTo = 0; this.connected(); this.pump(); }
    };
    ws.onmessage = m => this.message(ws, m);
    ws.onclose = () => this.closed(ws);
    ws.onerror = () => {};
  }

  connected() {
    this.retries = 0;
    this.onConnection(true);
  }

  message(ws, m) {
    if (typeof m.data !== 'string') return;
    let msg;
    try { msg = JSON.parse(m.data); } catch (_) { return; }
    if (msg.type === 'stream.resumed') {
      // kiroku holds `received_bytes`: resend from there.
      this.sentTo = msg.received_bytes;
      this.ready = true;
      this.connected();
      this.pump();
    } else if (msg.type === 'segment.stored') {
      this.acked = Math.max(this.acked, msg.received_bytes);
      while (this.chunks.length && this.chunks[0].offset + this.chunks[0].blob.size <= this.acked)
        this.chunks.shift();
      if (msg.segment && msg.segment.end_ms > this.savedMs) {
        this.savedMs = msg.segment.end_ms;
        this.onSaved(this.savedMs);
      }
    } else if (msg.type === 'capture.ended') {
      this.ended = msg;
    }
  }

  closed(ws) {
    if (ws !== this.socket) return;
    this.ready = false;
    if (this.ended) {
      this.onEnded(this.ended);
      this.resolveEnded(this.ended);
      return;
    }
    // Dropped without an end: kiroku keeps the capture for its resume grace. Reconnect.
    this.onConnection(false);
    const wait = RETRY_MS[Math.min(this.retries, RETRY_MS.length - 1)];
    this.retries += 1;
    setTimeout(() => this.connect(true), wait);
  }

  /** Sends every byte not yet handed to the current socket; then `finish` once stopped. */
  pump() {
    const ws = this.socket;
    if (!ws || !this.ready || ws.readyState !== WebSocket.OPEN) return;
    for (const c of this.chunks) {
      const end = c.offset + c.blob.size;
      if (end <= this.sentTo) continue;
      ws.send(this.sentTo > c.offset ? c.blob.slice(this.sentTo - c.offset) : c.blob);
      this.sentTo = end;
    }
    if (this.finishing && !this.recording && this.sentTo === this.total && !this.finishSent) {
      this.finishSent = ws;
      ws.send(JSON.stringify({type: 'finish'}));
    } else if (this.finishSent && this.finishSent !== ws && this.sentTo === this.total) {
      // The socket the finish went on dropped before the end: say it again on this one.
      this.finishSent = ws;
      ws.send(JSON.stringify({type: 'finish'}));
    }
  }
}
