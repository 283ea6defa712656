#!/usr/bin/env bash
# sse_corpus.sh - regenerate tests/fuzz/corpus/sse/ from the fake upstream:
# one file per dialect and mode (plain, tool_calls, reasoning), each the SSE
# body exactly as fake-upstream sends it, after HTTP de-chunking.
# Usage: tests/support/sse_corpus.sh BUILD_DIR (the one holding fake-upstream).
set -eu
bin="${1:?usage: sse_corpus.sh BUILD_DIR}/fake-upstream"
out="$(cd "$(dirname "$0")/../fuzz/corpus" && pwd)/sse"
mkdir -p "$out"
portfile=$(mktemp)
"$bin" --listen 127.0.0.1:0 >"$portfile" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$portfile"' EXIT
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$portfile" ] && break; sleep 0.2; done
url="http://127.0.0.1:$(cat "$portfile")"
req='{"model":"fake-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"h\u00e9 <&> \u4f60\u597d \ud83d\ude00"}]}'
tools='"tool_calls":[{"name":"get_weather","arguments":"{\"city\": \"P\u00e4ris\", \"days\": [1, 2]}"},{"name":"noop","arguments":"{}"}]'
reasoning='"reasoning":"Think \u601d\u8003 about <it>."'
for d in compact spaced pretty crlf cr comments nospace ascii fields nodone \
         openai azure vllm llamacpp ollama tgi deepseek qwen litellm; do
    for mode in plain tools reasoning; do
        case $mode in
        plain) extra="" ;;
        tools) extra=",$tools" ;;
        reasoning) extra=",$reasoning" ;;
        esac
        curl -s -o /dev/null -d "{\"dialect\":\"$d\"$extra}" "$url/_control/default"
        curl -s -N -d "$req" "$url/v1/chat/completions" >"$out/$d-$mode.sse"
    done
done
