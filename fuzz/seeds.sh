#!/usr/bin/env bash
# Seeds each fuzz target's working corpus (fuzz/corpus/<target>/, not kept in git) from
# kiroku's real fixtures: the Chromium MediaRecorder recordings (WebM, Matroska, fragmented
# MP4), the Safari-like MP4 and the faulty streams beside them, the sealed objects of
# fixtures/sealed/, and hand-written manifests, ranges, WHIP offers, receipts and audit lines.
# Media seeds are cut to 64 KiB, the media targets' -max_len (`make fuzz`).
# Idempotent: seeds are (re)written, whatever fuzzing added stays.
# `seeds.sh DIR` writes them under DIR instead (tests/fuzz_corpus.rs does, to run them).
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")/corpus}")
cd "$(dirname "$0")"
fx=../fixtures
put() { # put TARGET NAME < bytes
  mkdir -p "$out/$1"
  cat > "$out/$1/seed-$2"
}
for f in "$fx"/*.webm "$fx"/*.mkv "$fx"/analysis/*.webm; do
  n=$(basename "$f")
  for t in ebml_cutter webm_remuxer input_scan; do head -c 65536 "$f" | put "$t" "$n"; done
  # A live header for the finisher: 32 bytes of cluster index, then the file's head.
  { head -c 32 /dev/zero | tr '\0' '\3'; head -c 4096 "$f"; } | put finished_header "$n"
done
for f in "$fx"/*.mp4 "$fx"/analysis/*.mp4; do
  n=$(basename "$f")
  for t in mp4_cutter input_scan; do head -c 65536 "$f" | put "$t" "$n"; done
  { head -c 32 /dev/zero | tr '\0' '\5'; head -c 4096 "$f"; } | put finished_header "$n"
done
for f in "$fx"/sealed/*.krk; do put sealed_object "$(basename "$f")" < "$f"; done
head -c 70000 "$fx/interview-vp8-opus.webm" | put sealed_object two-chunks-of-media
printf '' | put sealed_object empty

printf '%s' '{"interview":"5b1f0e52-3c4d-4e7a-9f00-000000000002","candidate":"5b1f0e52-3c4d-4e7a-9f00-000000000001","region":"jp","key_version":1,"content_type":"video/webm","complete":true,"end":"finished","segments":[{"index":0,"object_key":"candidates/c/interviews/i/segments/00000000.krk","media_kind":"header","plain_len":188,"sealed_len":304,"start_ns":0,"end_ns":0,"starts_on_keyframe":false,"commitment":"617282ec67d57ed1260e18ef4657e6300fdc97c167d1915273385627785e7b65"},{"index":1,"object_key":"candidates/c/interviews/i/segments/00000001.krk","media_kind":"video-audio","plain_len":40542,"sealed_len":40690,"start_ns":0,"end_ns":4000000000,"starts_on_keyframe":true,"commitment":"7b4165dfcd7a62fc93c5f880dbeda48f18e158145ef1c1510b6772020cfabdb1"}],"finished":{"header":{"plain_len":267,"sealed_len":383,"commitment":"aa"},"trailer":null,"duration_ns":7952000000,"seek_points":2}}' | put manifest finished-two-segments

for r in 'bytes=0-99' 'bytes=100-' 'bytes=-500' 'bytes=0-0' 'bytes=5-2' 'bytes=0-1,3-4' 'bytes=18446744073709551615-'; do
  { printf '\x00\x00\x00\x00\x00\x10\x00\x00'; printf '%s' "$r"; } | put byte_range "$(echo "$r" | tr -c 'a-z0-9' '_')"
done

cat <<'SDP' | sed 's/$/\r/' | put whip_offer chromium-vp8-opus.sdp
v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS stream
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:5gEh
a=ice-pwd:Zc0tYpDLdKlvjcZ9qo0m6r1V
a=ice-options:trickle
a=fingerprint:sha-256 4F:1A:3C:9E:20:77:C2:8D:55:A1:0B:6E:93:F4:12:7D:E8:40:33:9C:AB:61:05:D2:7E:88:19:CF:42:B6:0A:DE
a=setup:actpass
a=mid:0
a=sendonly
a=msid:stream audio0
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=ssrc:1001 cname:kiroku
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:5gEh
a=ice-pwd:Zc0tYpDLdKlvjcZ9qo0m6r1V
a=ice-options:trickle
a=fingerprint:sha-256 4F:1A:3C:9E:20:77:C2:8D:55:A1:0B:6E:93:F4:12:7D:E8:40:33:9C:AB:61:05:D2:7E:88:19:CF:42:B6:0A:DE
a=setup:actpass
a=mid:1
a=sendonly
a=msid:stream video0
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=ssrc:1002 cname:kiroku
SDP

printf '%s' '{"receipt":{"version":"KI-CR-v1.1.0","jurisdiction":"JP","consentTimestamp":1764662400,"collectionMethod":"web_form","consentReceiptID":"ce_1","language":"ja","piiPrincipalId":"5b1f0e52-3c4d-4e7a-9f00-000000000001","piiControllers":[{"piiController":"kiroku"}],"services":[{"service":"AI job interview","purposes":[{"purpose":"Recording the voice and video of an AI job interview","purposeCategory":["core function"],"consentType":"EXPLICIT","piiCategory":["voice","video"],"primaryPurpose":true,"termination":"withdrawal"}]}],"sensitive":false,"kiroku":{"scope":"record","consentEventId":"ce_1","notice":"jp-2026-11"}},"signature":{"alg":"Ed25519","kid":"0000000000000000","value":"AAAA"}}' | put receipt record-grant

{
  printf '%s\n' '{"seq":1,"at":"2026-12-02T10:00:00+09:00","actor":"system","event":"capture.started","data":{"interview":"5b1f0e52-3c4d-4e7a-9f00-000000000002"},"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"00"}'
  printf '%s\n' '{"seq":2,"at":"2026-12-02T10:00:04+09:00","actor":"system","event":"segment.stored","data":{"segment":1},"prev":"00","hash":"00"}'
  printf '\0%s\n' '{"seq":2,"hash":"00","prev_sig":null,"sig":"AAAA"}'
} | put audit_log two-entries-one-checkpoint
echo "seeds: $(find "$out" -name 'seed-*' | wc -l) files in $(ls "$out" | wc -l) corpora in $out"
