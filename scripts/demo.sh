#!/usr/bin/env bash
# The main job on the embedded default: starts `kiroku serve` (local store + SQLite under
# ./data, no other server), streams a recorded browser interview to it over HTTP the way a
# front-end does, shows the sealed segments with their tags, and rebuilds the recording.
set -euo pipefail
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet
K=./target/debug/kiroku
ADDR=127.0.0.1:${DEMO_PORT:-8080}
DATA=${DEMO_DATA:-./data}
step() { printf '\n== %s\n' "$*"; }

step "1. kiroku serve (data under $DATA)"
$K --data-dir "$DATA" serve --listen "$ADDR" > /tmp/kiroku-demo-serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.2; done
cat /tmp/kiroku-demo-serve.log | grep -v INFO || true
TOKEN=$(cat "$DATA/secrets/service.token")

step "2. the operator registers the privacy notice and the recruiting company"
$K --data-dir "$DATA" notice list | grep -q '^demo-notice-v1 ' || \
  $K --data-dir "$DATA" notice add --id demo-notice-v1 --language ja \
    --url https://example.invalid/privacy/v1 --text README.md
if ! $K --data-dir "$DATA" recruiter list | grep -q '^acme-recruiting '; then
  $K --data-dir "$DATA" recruiter add acme-recruiting | tail -1 > "$DATA/secrets/acme-recruiting.key"
elif [ ! -s "$DATA/secrets/acme-recruiting.key" ]; then
  $K --data-dir "$DATA" recruiter rotate acme-recruiting | tail -1 > "$DATA/secrets/acme-recruiting.key"
fi
RKEY=$(cat "$DATA/secrets/acme-recruiting.key")
echo "recruiter acme-recruiting (its API key is in $DATA/secrets/acme-recruiting.key)"

step "2b. a candidate and their consent to be recorded"
CANDIDATE=$($K --data-dir "$DATA" candidate add --ref demo-candidate-1 --home-country JP | tail -1)
echo "candidate $CANDIDATE"
$K --data-dir "$DATA" consent grant --candidate "$CANDIDATE" --scope record
$K --data-dir "$DATA" consent grant --candidate "$CANDIDATE" --scope analyze

step "3. the front-end's backend creates the interview (POST /v1/interviews)"
CREATED=$(curl -sf -X POST "http://$ADDR/v1/interviews" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d "{\"candidate\":\"$CANDIDATE\",\"recruiter\":\"acme-recruiting\",\"content_type\":\"video/webm\"}")
echo "$CREATED" | python3 -m json.tool
INTERVIEW=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["interview_id"])')
INGEST=$(echo "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_token"])')

step "4. the browser's MediaRecorder recording streams in (PUT, chunked)"
curl -sf -X PUT "http://$ADDR/v1/interviews/$INTERVIEW/media" -H "Authorization: Bearer $INGEST" \
  -H 'Content-Type: video/webm' -H 'Transfer-Encoding: chunked' \
  --data-binary @fixtures/chromium-mediarecorder.webm | python3 -m json.tool

step "5. the interview as kiroku holds it (GET /v1/interviews/$INTERVIEW)"
curl -sf "http://$ADDR/v1/interviews/$INTERVIEW" -H "Authorization: Bearer $TOKEN" | python3 -m json.tool

step "6. the sealed objects on disk, and the tags stored beside them"
find "$DATA/regions" -path "*$INTERVIEW*" -type f | sort | while read -r f; do printf '%8d  %s\n' "$(stat -c %s "$f")" "$f"; done
first_tags=$(find "$DATA/regions" -path "*$INTERVIEW*segments/00000001.krk.tags.json")
cat "$first_tags"; echo
printf 'first bytes of a sealed segment: '; head -c 16 "${first_tags%.tags.json}" | od -An -c | head -1

step "7. the recording rebuilt from the sealed segments"
$K --data-dir "$DATA" recording export "$INTERVIEW" --out "$DATA/demo-export.webm"
# A streamable WebM has no Duration element (MediaRecorder's own files have none either), so
# the streams are listed here and the duration is the one kiroku measured from the media.
gst-discoverer-1.0 "$DATA/demo-export.webm" 2>/dev/null | grep -E '^ *(container|video|audio) #' || \
  echo "(install gstreamer1.0-plugins-base-apps for gst-discoverer-1.0 to list the streams)"
curl -sf "http://$ADDR/v1/interviews/$INTERVIEW" -H "Authorization: Bearer $TOKEN" | \
  python3 -c 'import json,sys; v=json.load(sys.stdin); print("media duration: %.2f s in %d segments" % (v["media_ms"]/1000, len(v["segments"])))'

step "8. the recruiter asks for the recording: no share consent yet"
REC="http://$ADDR/v1/recruiter/interviews/$INTERVIEW/recording"
curl -s "$REC" -H "Authorization: Bearer $RKEY" -w '  (HTTP %{http_code})\n'

step "9. the candidate opens their own link and shares the recording with acme-recruiting"
# Sharing is the candidate's own act: the front-end asks for a single-use link, the
# candidate's browser opens it (here curl with a cookie jar) and grants on their page.
LINK=$(curl -sf -X POST "http://$ADDR/v1/candidates/$CANDIDATE/sessions" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"recruiter":"acme-recruiting","language":"ja"}' | \
  python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
JAR=$(mktemp)   # 0600: it holds the candidate's session
trap 'kill $SERVER 2>/dev/null || true; rm -f "$JAR"' EXIT
# The link's page spends nothing (a mail scanner may fetch it); its button POSTs to it.
curl -sf -X POST -c "$JAR" -o /dev/null "http://$ADDR$LINK"
CSRF=$(curl -sf -b "$JAR" "http://$ADDR/v1/session" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf"])')
echo "the candidate's own pages: http://$ADDR/pages/interview.html and /pages/privacy.html"
GRANT=$(curl -sf -X POST "http://$ADDR/v1/me/consents" -b "$JAR" -H "X-CSRF-Token: $CSRF" \
  -H 'Content-Type: application/json' -d '{"scope":"share.recording","recipient":"acme-recruiting","language":"ja"}')
SHARE=$(echo "$GRANT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["consent_id"])')
echo "$GRANT" | python3 -c 'import json,sys; json.dump(json.load(sys.stdin)["receipt"], open(sys.argv[1], "w"), indent=1)' "$DATA/demo-receipt.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["receipt"]; print(json.dumps({k: r[k] for k in ["version","jurisdiction","consentTimestamp","collectionMethod","consentReceiptID","policyUrl"]}, indent=1))' "$DATA/demo-receipt.json"
$K --data-dir "$DATA" receipt verify "$DATA/demo-receipt.json" --public-key "$(curl -sf "http://$ADDR/v1/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')"

step "10. the recruiter downloads it (equal to the export), and a Range of it"
curl -sf "$REC" -H "Authorization: Bearer $RKEY" -o "$DATA/demo-released.webm"
cmp "$DATA/demo-released.webm" "$DATA/demo-export.webm" && echo "released recording == kiroku recording export ($(stat -c %s "$DATA/demo-released.webm") bytes)"
curl -sf "$REC" -H "Authorization: Bearer $RKEY" -H 'Range: bytes=70000-70015' -D - -o /dev/null | grep -iE '^(HTTP|content-range)'

step "11. the candidate withdraws; the very next request is refused"
curl -sf -X POST "http://$ADDR/v1/me/consents/$SHARE/withdraw" -b "$JAR" -H "X-CSRF-Token: $CSRF" >/dev/null
curl -s "$REC" -H "Authorization: Bearer $RKEY" -w '  (HTTP %{http_code})\n'

step "12. the candidate's provision records, and the audit log verified"
curl -sf "http://$ADDR/v1/candidates/$CANDIDATE/provisions" -H "Authorization: Bearer $TOKEN" | \
  python3 -c 'import json,sys; [print(p["at"], p["recipient"], p["item"], "segments", p["segments"], "bytes", p["byte_range"] or "all", "consent", p["consent_event_id"]) for p in json.load(sys.stdin)["provisions"]]'
$K --data-dir "$DATA" consent show --candidate "$CANDIDATE"
$K --data-dir "$DATA" audit verify

step "13. the candidate shares the analysis with acme-recruiting; the recruiter reads it"
curl -sf -X POST "http://$ADDR/v1/me/consents" -b "$JAR" -H "X-CSRF-Token: $CSRF" \
  -H 'Content-Type: application/json' -d '{"scope":"share.analysis","recipient":"acme-recruiting"}' >/dev/null
curl -sf "http://$ADDR/v1/recruiter/interviews/$INTERVIEW/analysis" -H "Authorization: Bearer $RKEY" | python3 -c '
import json, sys
r = json.load(sys.stdin)["analyzers"]["kiroku-builtin"]["interview"]
show = lambda v: "%s %s" % (v["value"], v["unit"])
print("talk time", show(r["talk_time"]), "| pauses", r["pauses"]["count"], "| loudness", show(r["loudness"]["integrated"]),
      "| pitch", show(r["pitch"]["median"]), "| speaking rate", show(r["speaking_rate"]))'
$K --data-dir "$DATA" audit verify
echo; echo "done: the export is $DATA/demo-export.webm"
