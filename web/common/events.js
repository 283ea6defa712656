// trustgate live events: one EventSource that shows its state on a connection indicator and
// opens itself again when the browser gives up on it. The console (review events) and the chat
// page (answers to held turns) both use it.
import { t } from '/common/i18n.js';

const RETRY_MS = 5000;  // after the browser gave up (a closed stream), wait this long and reopen

// Small connection indicator for an EventSource: state is live | connecting | reconnecting | off.
function setConn(el, state) {
  if (!el) return;
  el.dataset.state = state;
  el.dataset.i18n = `conn.${state}`;
  el.textContent = t(`conn.${state}`);
}

// Open url as an event stream. on: {eventName: fn(data, event)}, data the event's JSON (null
// when it is not JSON). conn: the indicator element. While the browser retries by itself the
// indicator says reconnecting; once it gives up (the stream is CLOSED, e.g. a session expired)
// the stream is reopened after RETRY_MS, when beforeRetry (optional, async) resolves true.
// An event the server numbered (id:) and sent again after a reconnect is handled once.
// Returns {close()}: after it, nothing is reopened and no handler runs.
export function openStream(url, { conn, on = {}, beforeRetry }) {
  let es = null, timer = 0, closed = false;
  const seen = new Set();
  const deliver = (fn, ev) => {
    const key = ev.lastEventId ? `${ev.lastEventId}|${ev.data}` : '';
    if (key) {
      if (seen.has(key)) return;
      seen.add(key);
    }
    let data = null;
    try { data = JSON.parse(ev.data); } catch { /* not JSON */ }
    fn(data, ev);
  };
  const open = () => {
    setConn(conn, 'connecting');
    const src = es = new EventSource(url);
    src.onopen = () => setConn(conn, 'live');
    src.onerror = () => {
      if (src.readyState !== EventSource.CLOSED) return setConn(conn, 'reconnecting');
      setConn(conn, 'off');
      timer = setTimeout(async () => {
        if (closed || es !== src) return;
        if (beforeRetry && !(await beforeRetry())) return;
        if (!closed && es === src) open();
      }, RETRY_MS);
    };
    for (const [name, fn] of Object.entries(on)) src.addEventListener(name, (ev) => deliver(fn, ev));
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (es) es.close();
      es = null;
    },
  };
}
