// The few WIRE.md messages the dashboard speaks (protobuf, hand-written):
// ClientMessage { 1: SubscribeRequest{1: topic}, 2: PublishRequest{1: repeated
// topics, 2: payload}, 3: UnsubscribeRequest{1: topic} } and ServerMessage
// { 1: WelcomeMessage{1: id}, 2: TopicMessage{1: topic, 2: sender, 3: body} }.

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

function varint(out, n) {
  n = Number(n);
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

function lenField(out, field, bytes) {
  varint(out, (field << 3) | 2);
  varint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

export function encodeSubscribe(topic) {
  const inner = [];
  lenField(inner, 1, utf8.encode(topic));
  const out = [];
  lenField(out, 1, inner);
  return new Uint8Array(out);
}

export function encodeUnsubscribe(topic) {
  const inner = [];
  lenField(inner, 1, utf8.encode(topic));
  const out = [];
  lenField(out, 3, inner);
  return new Uint8Array(out);
}

export function encodePublish(topics, payload) {
  const inner = [];
  for (const t of topics) lenField(inner, 1, utf8.encode(t));
  lenField(inner, 2, typeof payload === 'string' ? utf8.encode(payload) : payload);
  const out = [];
  lenField(out, 2, inner);
  return new Uint8Array(out);
}

class Reader {
  constructor(bytes) { this.b = bytes; this.i = 0; }
  done() { return this.i >= this.b.length; }
  varint() {
    let n = 0, mul = 1;
    for (let k = 0; k < 10; ++k) {
      if (this.i >= this.b.length) throw new Error('truncated varint');
      const byte = this.b[this.i++];
      n += (byte & 0x7f) * mul;
      if (!(byte & 0x80)) return n;
      mul *= 128;
    }
    throw new Error('varint too long');
  }
  bytes() {
    const len = this.varint();
    if (this.i + len > this.b.length) throw new Error('truncated field');
    const out = this.b.subarray(this.i, this.i + len);
    this.i += len;
    return out;
  }
  skip(wire) {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.i += 8;
    else if (wire === 5) this.i += 4;
    else throw new Error('bad wire type');
  }
}

// -> {welcome: id} | {topic, sender, body (Uint8Array)} | null
export function decodeServerMessage(bytes) {
  const r = new Reader(bytes);
  while (!r.done()) {
    const key = r.varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (field === 1 && wire === 2) {
      const w = new Reader(r.bytes());
      let id = 0;
      while (!w.done()) {
        const k = w.varint();
        if (k === 8) id = w.varint(); else w.skip(k & 7);
      }
      return { welcome: id };
    }
    if (field === 2 && wire === 2) {
      const m = new Reader(r.bytes());
      const msg = { topic: '', sender: 0, body: new Uint8Array() };
      while (!m.done()) {
        const k = m.varint();
        if (k === 10) msg.topic = utf8d.decode(m.bytes());
        else if (k === 16) msg.sender = m.varint();
        else if (k === 26) msg.body = m.bytes();
        else m.skip(k & 7);
      }
      return msg;
    }
    r.skip(wire);
  }
  return null;
}

export function text(bytes) { return utf8d.decode(bytes); }
