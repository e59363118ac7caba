/**
 * Server-Sent Events over `fetch`, so requests carry headers (Authorization,
 * Last-Event-ID) that EventSource cannot send, in browsers and Node alike.
 * Frames per the HTML spec: `id:`, `event:`, `data:` (joined by newlines),
 * comments (`:`) ignored, a blank line ends a frame.
 */
export interface SseFrame {
  id: string | undefined;
  event: string;
  data: string;
}

export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseFrame> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let frame: { id?: string; event?: string; data: string[] } = { data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (frame.data.length || frame.event) yield { id: frame.id, event: frame.event ?? 'message', data: frame.data.join('\n') };
          frame = { data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') frame.data.push(value);
        else if (field === 'event') frame.event = value;
        else if (field === 'id') frame.id = value;
      }
    }
  } finally {
    // Closing the reader ends the HTTP response: the server sees the client leave.
    await reader.cancel().catch(() => {});
  }
}
