
// ---------------------------------------------------------------------------
// p2pmesh browser layer. Appended to the Emscripten ES module (which defines
// createP2pmeshModule above), so p2pmesh.mjs is one file next to p2pmesh.wasm.
//
// Every mesh decision is made by the C++ core (MeshPeer). This layer only
// moves events in (WebSocket frames, RTCPeerConnection / RTCDataChannel
// events, timers) and carries actions out. See docs/browser.md.
// ---------------------------------------------------------------------------

let p2pmeshModulePromise = null;

/** Loads (once per page) and returns the WebAssembly module. */
export function loadP2pmesh(moduleOptions) {
  if (!p2pmeshModulePromise) {
    p2pmeshModulePromise = createP2pmeshModule(moduleOptions || {}).catch((error) => {
      p2pmeshModulePromise = null;
      throw error;
    });
  }
  return p2pmeshModulePromise;
}

const nowUs = () => Math.floor(performance.now() * 1000);

function defaultServiceUrl() {
  if (typeof location === 'undefined' || !location.host) {
    throw new Error('p2pmesh: no url given and no page location to default to');
  }
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/service';
}

function randomSeed() {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return (words[0] & 0x1fffff) * 0x100000000 + words[1];  // < 2^53
}

// Signed broadcasts (docs/security.md): an Ed25519 key pair per Mesh, with
// WebCrypto (Chromium 113+, Firefox 129+, Safari 17+; secure contexts only:
// https:// or localhost). Throws a clear error where it is missing.
async function signingKeyPair(given) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    throw new Error('p2pmesh: WebCrypto is not available (the page is not a secure context: ' +
      'serve it over https:// or from localhost); it signs broadcasts. ' +
      'Mesh.join({sign: false}) joins without signing');
  }
  let keys = given;
  try {
    if (!keys) keys = await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    const raw = new Uint8Array(await subtle.exportKey('raw', keys.publicKey));
    return { privateKey: keys.privateKey, publicKey: raw };
  } catch (error) {
    throw new Error(`p2pmesh: this browser has no Ed25519 in WebCrypto (${error.name || error}); ` +
      'it signs broadcasts. Mesh.join({sign: false}) joins without signing');
  }
}

/** A fresh Ed25519 key pair for Mesh.join({keyPair}), e.g. to have its public key vouched for by a token's `pk` claim. */
export function generateSigningKeyPair() {
  return crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

// Per-link send backpressure (RtcLink.send) follows the core's policy
// (link_send_policy.hpp, module.sendPolicy()): the browser buffers up to its
// high-water mark, we queue up to its queue bound more, and writing resumes
// at its low-water mark.

// One WebRTC connection attempt (a core LinkId): an RTCPeerConnection and its
// data channel `data` (reliable, ordered), and for unreliable broadcasts a
// second one, `unreliable` (unordered, maxRetransmits 0), opened by either
// side on first use (the other accepts it).
const UNRELIABLE_LABEL = 'unreliable';
const MAX_UNRELIABLE_CHANNELS = 2;  // ours and the far end's, if both opened one at once

class RtcLink {
  constructor(mesh, id, peer, initiator) {
    this.mesh = mesh;
    this.id = id;
    this.peer = peer;
    this.initiator = initiator;
    this.closed = false;
    this.queue = [];  // packets waiting for the channel to drain
    this.queuedBytes = 0;
    this.remoteSet = false;
    this.pendingRemote = [];  // remote candidates before the remote description
    // Types of the candidates signaling announced, by "address:port": a remote
    // candidate ICE first met as peer-reflexive keeps that label in the stats.
    this.announced = new Map();
    this.described = false;
    this.pendingLocal = [];   // local candidates before our description went out
    this.channel = null;
    this.unreliable = [];  // `unreliable` channels: we send on an open one, read all
    const pc = new RTCPeerConnection(mesh.rtcConfig);
    this.pc = pc;
    pc.onicecandidate = (event) => {
      // null / empty candidate = end of candidates: nothing to signal.
      if (this.closed || !event.candidate || !event.candidate.candidate) return;
      const init = event.candidate.toJSON();
      if (mesh.candidateFilter && !mesh.candidateFilter(init)) return;
      const json = JSON.stringify(init);
      if (this.described) mesh._input((core) => core.localCandidate(nowUs(), id, json));
      else this.pendingLocal.push(json);
    };
    // A TURN server refused or did not answer (e.g. expired credentials):
    // no relay candidates, so links that need one will not form.
    pc.onicecandidateerror = (event) => {
      if (this.closed || !String(event.url || '').startsWith('turn')) return;
      mesh._relayFailed(this.peer, `${event.url}: ${event.errorCode} ${event.errorText || ''}`.trim());
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.lost('ICE/DTLS connection failed');
      else if (pc.connectionState === 'closed') this.lost('connection closed');
    };
    pc.ondatachannel = (event) => {
      if (event.channel.label === UNRELIABLE_LABEL) this.attachUnreliable(event.channel);
      else if (!initiator) this.attach(event.channel);
    };
    if (initiator) this.attach(pc.createDataChannel('data'));
  }

  attachUnreliable(channel) {
    if (this.closed || this.unreliable.length >= MAX_UNRELIABLE_CHANNELS) {
      channel.close();
      return;
    }
    this.unreliable.push(channel);
    channel.binaryType = 'arraybuffer';
    channel.onmessage = (event) => {
      if (this.closed || !(event.data instanceof ArrayBuffer)) return;
      const bytes = new Uint8Array(event.data);
      if (this.early) this.early.push(bytes);
      else this.mesh._input((core) => core.linkData(nowUs(), this.id, bytes), false);
    };
  }

  unreliableOpen() { return this.unreliable.some((c) => c.readyState === 'open'); }

  // An unreliable broadcast's packet: never queued (link_send_policy.hpp):
  // past the high-water mark it is dropped and counted. Until the channel is
  // open (the first use opens it) the first channel carries it.
  sendUnreliable(bytes) {
    if (this.closed) return;
    const open = this.unreliable.find((c) => c.readyState === 'open');
    if (!open) {
      if (this.unreliable.length === 0) {
        try {
          this.attachUnreliable(this.pc.createDataChannel(UNRELIABLE_LABEL,
            { ordered: false, maxRetransmits: 0 }));
        } catch (error) {
          this.mesh._log('opening the unreliable channel failed', error);
        }
      }
      this.send(bytes);
      return;
    }
    if (open.bufferedAmount > this.mesh._sendPolicy.highWater) {
      this.mesh._sendQueueDrops += 1;
      return;
    }
    try {
      open.send(bytes);
    } catch (error) {
      this.mesh._sendQueueDrops += 1;  // closing under us: the first channel carries on
    }
  }

  attach(channel) {
    if (this.closed) { channel.close(); return; }
    this.channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = this.mesh._sendPolicy.lowWater;
    channel.onbufferedamountlow = () => this.flush();
    // Open once the path is known, so that 'link-up' can say which it is.
    // Messages that arrive meanwhile (the far side may already send) wait.
    this.early = [];
    channel.onopen = async () => {
      await this.reportCandidateType();
      if (this.closed) return;
      this.mesh._input((core) => core.linkOpen(nowUs(), this.id));
      const early = this.early;
      this.early = null;
      for (const bytes of early) this.mesh._input((core) => core.linkData(nowUs(), this.id, bytes), false);
    };
    const iceTransport = this.pc.sctp && this.pc.sctp.transport && this.pc.sctp.transport.iceTransport;
    if (iceTransport) iceTransport.onselectedcandidatepairchange = () => this.reportCandidateType();
    channel.onclose = () => this.lost('data channel closed');
    channel.onmessage = (event) => {
      if (this.closed || !(event.data instanceof ArrayBuffer)) return;
      const bytes = new Uint8Array(event.data);
      if (this.early) this.early.push(bytes);
      else this.mesh._input((core) => core.linkData(nowUs(), this.id, bytes), false);
    };
  }

  async offer() {
    try {
      await this.pc.setLocalDescription(await this.pc.createOffer());
      this.describedLocally();
    } catch (error) {
      this.mesh._log('offer failed', error);
      this.lost(`offer failed: ${error.message}`);
    }
  }

  async accept(offerJson) {
    try {
      await this.pc.setRemoteDescription(JSON.parse(offerJson));
      this.remoteReady();
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      this.describedLocally();
    } catch (error) {
      this.mesh._log('answering an offer failed', error);
      this.lost(`answering an offer failed: ${error.message}`);
    }
  }

  async applyAnswer(answerJson) {
    try {
      await this.pc.setRemoteDescription(JSON.parse(answerJson));
      this.remoteReady();
    } catch (error) {
      this.mesh._log('applying an answer failed', error);
      this.lost(`applying an answer failed: ${error.message}`);
    }
  }

  addRemoteCandidate(candidateJson) {
    let init;
    try {
      init = JSON.parse(candidateJson);
    } catch (error) {
      return;  // not JSON: nothing to add
    }
    if (!this.remoteSet) this.pendingRemote.push(init);
    else this.addCandidate(init);
  }

  // The candidate may be the one ICE already uses as peer-reflexive: its
  // path is then known for what it is (host...). A few per link: cheap.
  addCandidate(init) {
    try {
      const candidate = new RTCIceCandidate(init);
      if (candidate.address && this.announced.size < 64) {
        this.announced.set(`${candidate.address}:${candidate.port}`, candidate.type);
      }
    } catch (error) { /* addIceCandidate reports it */ }
    this.pc.addIceCandidate(init)
      .then(() => { if (!this.closed) this.reportCandidateType(); })
      .catch((error) => this.mesh._log('addIceCandidate', error));
  }

  remoteReady() {
    if (this.closed) return;
    this.remoteSet = true;
    for (const init of this.pendingRemote.splice(0)) this.addCandidate(init);
  }

  describedLocally() {
    if (this.closed) return;
    const description = this.pc.localDescription;
    const json = JSON.stringify({ type: description.type, sdp: description.sdp });
    this.mesh._input((core) => core.localDescription(nowUs(), this.id, json));
    this.described = true;
    for (const candidate of this.pendingLocal.splice(0)) {
      this.mesh._input((core) => core.localCandidate(nowUs(), this.id, candidate));
    }
  }

  // Backpressure: past the high-water mark in the browser's own buffer,
  // packets wait here (bounded by the queue bound; beyond, dropped and
  // counted) until the channel drains: a burst never makes send() throw and
  // cost the link, and a slow neighbour never grows memory without bound.
  send(bytes) {
    if (this.closed || !this.channel || this.channel.readyState !== 'open') return;
    const policy = this.mesh._sendPolicy;
    if (this.queue.length > 0 || this.channel.bufferedAmount > policy.highWater) {
      if (this.queuedBytes + bytes.length > policy.queueBound) {
        this.mesh._sendQueueDrops += 1;
        return;
      }
      this.queue.push(bytes.slice());  // the core's buffer is reused: keep a copy
      this.queuedBytes += bytes.length;
      return;
    }
    this.write(bytes);
  }

  flush() {
    while (this.queue.length > 0 && !this.closed &&
           this.channel.bufferedAmount <= this.mesh._sendPolicy.highWater) {
      const bytes = this.queue.shift();
      this.queuedBytes -= bytes.length;
      this.write(bytes);
    }
  }

  write(bytes) {
    try {
      this.channel.send(bytes);
    } catch (error) {
      this.mesh._log('send failed', error);
      this.lost(`send failed: ${error.message}`);
    }
  }

  // The core asked for the transport's round-trip time (links with peers
  // its keep-alive cannot ping): the selected ICE candidate pair's.
  async measureRtt() {
    try {
      const stats = await this.pc.getStats();
      let rttSeconds;
      stats.forEach((report) => {
        if (report.type === 'candidate-pair' && report.nominated &&
            report.state === 'succeeded' && typeof report.currentRoundTripTime === 'number') {
          rttSeconds = report.currentRoundTripTime;
        }
      });
      if (rttSeconds === undefined || this.closed) return;
      const rttUs = Math.round(rttSeconds * 1e6);
      this.mesh._input((core) => core.linkRtt(nowUs(), this.id, rttUs), false);
    } catch (error) {
      this.mesh._log('getStats failed', error);
    }
  }

  // Tells the core the selected candidate pair's path (host, srflx, prflx,
  // relay: the costliest end's type; ice.hpp), from the stats, which give a
  // peer-reflexive remote candidate that signaling announced later its real type.
  // Chromium serves a stats report up to 50 ms old from its cache: one taken
  // before ICE chose hides the choice, so an unknown or peer-reflexive answer
  // is asked again a little later.
  async reportCandidateType(retries = 3) {
    try {
      const stats = await this.pc.getStats();
      let pair;
      stats.forEach((report) => {
        if (report.type === 'transport' && report.selectedCandidatePairId) {
          pair = stats.get(report.selectedCandidatePairId);
        }
      });
      if (this.closed) return;
      const again = () => {
        if (retries > 0) setTimeout(() => { if (!this.closed) this.reportCandidateType(retries - 1); }, 100);
      };
      if (!pair) { again(); return; }
      const typeOf = (id) => (stats.get(id) || {}).candidateType;
      const remote = stats.get(pair.remoteCandidateId) || {};
      const remoteType = remote.candidateType === 'prflx' ? this.announcedType(remote) : remote.candidateType;
      const ends = [typeOf(pair.localCandidateId), remoteType];
      const type = ['relay', 'srflx', 'prflx', 'host'].find((t) => ends.includes(t)) || 'unknown';
      this.mesh._input((core) => core.linkCandidateType(nowUs(), this.id, type));
      if (type === 'unknown' || type === 'prflx') again();
    } catch (error) {
      this.mesh._log('getStats failed', error);
    }
  }

  // The announced type of a peer-reflexive remote candidate, matched by
  // address and port, or by port alone where the stats hide its address.
  announcedType(remote) {
    const types = new Set();
    for (const [address, type] of this.announced) {
      if (address.endsWith(`:${remote.port}`) && (!remote.address || address === `${remote.address}:${remote.port}`)) {
        types.add(type);
      }
    }
    return types.size === 1 ? [...types][0] : 'prflx';
  }

  // The core asked to close: no report back.
  close() {
    if (this.closed) return;
    this.closed = true;
    this.teardown();
  }

  // The connection failed or the far side closed it: tell the core, and the
  // application why.
  lost(reason) {
    if (this.closed) return;
    this.closed = true;
    this.teardown();
    this.mesh._links.delete(this.id);
    this.mesh._emit('error', { kind: 'link-failed', peer: this.peer, reason });
    this.mesh._input((core) => core.linkClosed(nowUs(), this.id));
  }

  teardown() {
    try { if (this.channel) this.channel.close(); } catch (error) { /* already closed */ }
    for (const channel of this.unreliable) {
      try { channel.close(); } catch (error) { /* already closed */ }
    }
    try { this.pc.close(); } catch (error) { /* already closed */ }
  }
}

/** Largest payload of one broadcast, in bytes (it must fit through the server). */
export const MAX_PAYLOAD_BYTES = 48 * 1024;

/** Mesh.join's option defaults: the core's (MeshConfig), the only copy. */
export async function defaultOptions(moduleOptions) {
  return (await loadP2pmesh(moduleOptions)).defaultOptions();
}

// Checks the options a page gives Mesh.join, so that a mistake is an error
// at once rather than a mesh that misbehaves. JavaScript checks the types
// (the core takes numbers only); the rules are the core's (MeshConfig::
// validate), with its message.
function validateJoinOptions(module, settings, coreOptions) {
  if (typeof settings.group !== 'string' || !module.validGroupName(settings.group)) {
    throw new TypeError(`p2pmesh: group "${settings.group}" is not 1-64 characters of A-Z a-z 0-9 _ -`);
  }
  const integer = (key) => {
    const value = settings[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 0 && value < 2 ** 31)) {
      throw new RangeError(`p2pmesh: ${key} must be a non-negative integer, not ${value}`);
    }
  };
  const number = (key) => {
    const value = settings[key];
    if (value !== undefined && !(Number.isFinite(value) && value >= 0 && value < 2 ** 40)) {
      throw new RangeError(`p2pmesh: ${key} must be a non-negative number, not ${value}`);
    }
  };
  for (const key of ['targetConnections', 'maxConnections', 'maxPacketBytes', 'treeMaxDepth']) integer(key);
  for (const key of ['linkTimeoutMs', 'statusIntervalMs', 'memberTimeoutMs', 'candidateBackoffMs',
    'pingIntervalMs', 'deadLinkTimeoutMs', 'historyAgeMs', 'reportIntervalMs', 'treeAlpha', 'timeoutMs',
    'reconnectInitialMs', 'reconnectMaxMs']) number(key);
  if (!settings.urls.every((url) => typeof url === 'string' && url.length > 0)) {
    throw new TypeError('p2pmesh: urls must be a list of WebSocket URLs');
  }
  if (settings.treeMode !== undefined && !['unit', 'latency', 'blend'].includes(settings.treeMode)) {
    throw new RangeError(`p2pmesh: treeMode must be 'unit', 'latency' or 'blend', not ${settings.treeMode}`);
  }
  const problem = module.configProblem(coreOptions);
  if (problem) throw new RangeError(`p2pmesh: ${problem}`);
}

/**
 * One member of a mesh group. `await Mesh.join({url, group})`, then
 * `broadcast(data)`, `on('message' | 'gap' | 'peer' | 'link' | 'change' | 'close', fn)`,
 * `view()`, `leave()`.
 */
export class Mesh {
  constructor(module, core, options, coreOptions) {
    this._module = module;
    this._sendPolicy = module.sendPolicy();
    this._coreOptions = coreOptions;  // a new core (new id) for each connection
    this._core = core;
    this._links = new Map();  // link id -> RtcLink
    this._handlers = new Map();
    this._queue = [];
    this._draining = false;
    this._timer = null;
    this._ws = null;
    this._left = false;
    this._changePending = false;
    this._sendQueueDrops = 0;  // packets dropped: a link's send queue was full
    this._debug = !!options.debug;
    this.urls = options.urls;
    this._urlIndex = 0;
    this.url = this.urls[0];
    this._reconnect = options.reconnect !== false;
    const defaults = module.defaultOptions();  // the core's
    this._reconnectInitialMs = options.reconnectInitialMs ?? defaults.reconnectInitialMs;
    this._reconnectMaxMs = options.reconnectMaxMs ?? defaults.reconnectMaxMs;
    this._attempt = 0;
    this._timeoutMs = options.timeoutMs || 10000;
    this._reconnectTimer = null;
    this.group = options.group;
    this.id = 0;
    this.rtcConfig = options.rtcConfig || { iceServers: options.iceServers || [] };
    this._ownIceServers = !!(options.rtcConfig || (options.iceServers && options.iceServers.length));
    this._relayFailureReported = false;  // 'error' once per server session
    this.candidateFilter = options.candidateFilter || null;
    // meshd --auth-key: the JWT, sent as ?token= (browsers cannot set
    // headers on a WebSocket). Refused: 'token-rejected', no retries until
    // setToken().
    this._token = options.token || '';
    this._tokenRejected = false;
    // Signed broadcasts: WebCrypto is asynchronous, so signatures and checks
    // run on two promise chains, in the order the core asked for them (its
    // broadcasts leave, and its messages are delivered, in that order).
    this._keys = null;
    this._signing = Promise.resolve();
    this._verifying = Promise.resolve();
    this._verifyKeys = new Map();  // raw public key (base64) -> CryptoKey
  }

  /**
   * A new token (meshd --auth-key) for the next connections; after a
   * 'token-rejected' error it also connects again.
   */
  setToken(token) {
    if (typeof token !== 'string') throw new TypeError('p2pmesh: setToken(token) takes a string');
    this._token = token;
    if (!this._tokenRejected || this._left) return;
    this._tokenRejected = false;
    this._attempt = 0;
    this._scheduleReconnect(0);
  }

  /** Connects to the server, waits for the welcome (our id) and returns the mesh. */
  static async join(options = {}) {
    const module = await loadP2pmesh(options.moduleOptions);
    const urls = options.urls && options.urls.length ? [...options.urls]
      : [options.url || defaultServiceUrl()];
    if (options.token !== undefined && typeof options.token !== 'string') {
      throw new TypeError('p2pmesh: token must be a string (a JWT)');
    }
    const settings = { ...options, urls, url: urls[0], group: options.group || 'default' };
    const coreOptions = { seed: randomSeed() };
    for (const key of ['group', 'targetConnections', 'maxConnections', 'linkTimeoutMs',
      'statusIntervalMs', 'memberTimeoutMs', 'candidateBackoffMs', 'pingIntervalMs',
      'deadLinkTimeoutMs', 'historyAgeMs', 'reportIntervalMs', 'observerCommands', 'pruneRoutes', 'fallback',
      'maxPacketBytes', 'treeMode', 'treeAlpha', 'treeMaxDepth', 'seed', 'requireSignatures']) {
      if (settings[key] !== undefined) coreOptions[key] = settings[key];
    }
    // Our key signs every broadcast; the core announces its public half.
    const keys = options.sign === false ? null : await signingKeyPair(options.keyPair);
    if (keys) coreOptions.publicKey = keys.publicKey;
    validateJoinOptions(module, settings, coreOptions);
    const mesh = new Mesh(module, new module.MeshPeer(coreOptions), settings, coreOptions);
    mesh._keys = keys;
    /** Our Ed25519 public key (32 bytes; null with sign: false): a token's `pk` is its base64url. */
    mesh.publicKey = keys ? keys.publicKey : null;
    // The first connection: each URL once, in order.
    for (let i = 0; ; ++i) {
      try {
        await mesh._connect(mesh._timeoutMs);
        return mesh;
      } catch (error) {
        // Every node of a cluster shares the key: a refused token is refused everywhere.
        if (i + 1 >= urls.length || error.tokenRejected) {
          mesh._dispose();
          throw error;
        }
        mesh._useNextUrl();
      }
    }
  }

  /**
   * Sends to every member of the group. Returns the message's sequence number.
   * `{reliable: false}`: unreliable (unordered, never retransmitted, nothing
   * waits for a lost one; numbered apart from the reliable ones).
   */
  broadcast(data, options = {}) {
    const reliable = !(options && options.reliable === false);
    if (!this._core || this._left) throw new Error('p2pmesh: not joined');
    const bytes = typeof data === 'string' ? textEncoder.encode(data)
      : data instanceof Uint8Array ? data
        : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : new Uint8Array(data);
    if (bytes.length > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`p2pmesh: broadcast of ${bytes.length} bytes, the limit is ${MAX_PAYLOAD_BYTES}`);
    }
    let seq = 0;
    this._sending((send) => send((core) => {
      const result = core.broadcast(nowUs(), bytes, reliable);
      seq = result.seq;
      return result.actions;
    }), () => seq);
    return seq;
  }

  // Runs an input that may send a broadcast; backpressure made visible:
  // links whose send queue was full lost it.
  _sending(run, seqOf) {
    const dropsBefore = this._sendQueueDrops;
    run((call) => this._input(call, false));
    const dropped = this._sendQueueDrops - dropsBefore;
    if (dropped > 0) {
      const seq = seqOf();
      this._emit('error', { kind: 'send-queue-full', reason: `${dropped} link(s) dropped broadcast ${seq}: send queue full`, seq, dropped });
    }
  }

  // The core's 'sign': our broadcast `seq` leaves once signed.
  _sign(action) {
    const core = this._core;
    this._signing = this._signing.then(async () => {
      let signature = new Uint8Array(0);  // unsigned if WebCrypto fails (receivers decide)
      try {
        if (this._keys) {
          signature = new Uint8Array(await crypto.subtle.sign('Ed25519', this._keys.privateKey, action.message));
        }
      } catch (error) {
        this._log('signing failed', error);
      }
      if (core !== this._core) return;  // a new session (new id): this one is gone
      this._sending((send) => send((c) => c.broadcastSigned(nowUs(), action.id, signature)),
        () => action.seq);
    });
  }

  // The core's 'verify': the packet is delivered (or dropped) once checked.
  _verify(action) {
    const core = this._core;
    this._verifying = this._verifying.then(async () => {
      let valid = false;
      try {
        const id = btoa(String.fromCharCode(...action.publicKey));
        let key = this._verifyKeys.get(id);
        if (!key) {
          key = await crypto.subtle.importKey('raw', action.publicKey, { name: 'Ed25519' }, false, ['verify']);
          if (this._verifyKeys.size >= 4096) this._verifyKeys.clear();  // a bound, not a policy
          this._verifyKeys.set(id, key);
        }
        valid = await crypto.subtle.verify('Ed25519', key, action.signature, action.message);
      } catch (error) {
        this._log('signature check failed', error);
      }
      if (core !== this._core) return;
      this._input((c) => c.signatureChecked(nowUs(), action.ticket, valid));
    });
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  off(event, handler) {
    const set = this._handlers.get(event);
    if (set) set.delete(handler);
  }

  /** The group as this peer sees it: {self, peers, links:[[a,b,rttUs]], adjacency}. */
  view() {
    if (!this._core) return { self: this.id, peers: [], links: [], adjacency: {} };
    return this._core.view();
  }

  /** This peer's WebRTC links: [{link, peer, initiated, open, rttUs, unreliableChannel}]. */
  links() {
    if (!this._core) return [];
    return this._core.links().map((l) => {
      const link = this._links.get(l.link);
      return { ...l, unreliableChannel: link ? link.unreliableOpen() : false };
    });
  }

  /** The broadcast tree from this peer: {root, edges:[[parent, child]]}. */
  tree() { return this._core ? this._core.tree() : { root: this.id, edges: [] }; }

  /** Counters of the core (drops by reason, traffic, link life) and the driver: MeshCounters in p2pmesh.d.ts. */
  counters() {
    return this._core ? { ...this._core.counters(), sendQueueDrops: this._sendQueueDrops } : {};
  }

  /** The same as snapshot() (its old name, kept for one release). */
  state() { return this.snapshot(); }

  /**
   * Everything worth reporting about this peer (dashboards): fired as the
   * 'change' event whenever it may have changed. The native Peer::snapshot().
   */
  snapshot() {
    return {
      id: this.id, group: this.group, url: this.url, joined: !!this._core && !this._left,
      view: this.view(), links: this.links(), tree: this.tree(), counters: this.counters(),
    };
  }

  /**
   * Extra facts (a JSON-serialisable object) for this peer's state reports
   * (published on `<group>.report` when `reportIntervalMs` is set).
   */
  setReportInfo(info) {
    if (this._core) this._core.setReportAppJson(info === undefined ? '' : JSON.stringify(info));
  }

  /** Leaves gracefully: tells the group, closes every link and the socket. */
  leave() {
    if (this._left) return Promise.resolve();
    this._input((core) => core.leave(nowUs()));
    this._left = true;
    const ws = this._ws;
    const closed = new Promise((resolve) => {
      if (!ws || ws.readyState === WebSocket.CLOSED) { resolve(); return; }
      const done = setTimeout(resolve, 2000);
      ws.addEventListener('close', () => { clearTimeout(done); resolve(); });
    });
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'leave');
    this._dispose();
    this._emit('change', this.snapshot());
    return closed;
  }

  // ---- internals ----

  // The URL of the WebSocket: with the token as a query parameter.
  _socketUrl() {
    if (!this._token) return this.url;
    return `${this.url}${this.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(this._token)}`;
  }

  // A connection closed before its welcome: with a token, a plain GET of the
  // same URL tells whether meshd refused it (a page cannot read the 401 of
  // a WebSocket upgrade; meshd answers this one to any origin).
  async _refusal(code) {
    const generic = new Error(`p2pmesh: ${this.url} closed before the welcome (${code})`);
    if (!this._token) return generic;
    try {
      const response = await fetch(this._socketUrl().replace(/^ws/, 'http'), { cache: 'no-store' });
      if (response.status !== 401) return generic;
      const why = (await response.text()).trim();
      const error = new Error(`p2pmesh: token refused by ${this.url} (HTTP 401: ${why})`);
      error.tokenRejected = true;
      return error;
    } catch (probeError) {
      return generic;
    }
  }

  _connect(timeoutMs) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this._socketUrl());
      ws.binaryType = 'arraybuffer';
      this._ws = ws;
      let welcomed = false;
      const timer = setTimeout(() => {
        reject(new Error(`p2pmesh: no welcome from ${this.url} within ${timeoutMs} ms`));
        ws.close();
      }, timeoutMs);
      ws.onmessage = (event) => {
        if (typeof event.data === 'string') {
          this._log('text frame ignored (protocol error)');
          return;
        }
        const bytes = new Uint8Array(event.data);
        this._input((core) => core.serverFrame(nowUs(), bytes));
        if (!welcomed && this._core && this._core.id() !== 0) {
          welcomed = true;
          this.id = this._core.id();
          clearTimeout(timer);
          resolve();
        }
      };
      ws.onclose = (event) => {
        clearTimeout(timer);
        if (!welcomed) {
          this._refusal(event.code).then(reject);
          return;
        }
        if (this._left || ws !== this._ws) return;
        this._serverLost(event);
      };
      ws.onerror = () => this._log('WebSocket error');
    });
  }

  // The server forgot us (the group hears we left): the core closes every
  // link and reports each link and member gone ('link' and 'peer' events);
  // then 'error' and 'close', and a new connection (new core, new id) after
  // a backoff, along the URL list, until one welcomes us ('joined').
  // Counted every time; reported once per server session (one per link
  // would flood the application).
  _relayFailed(peer, reason) {
    this._input((core) => core.relayAllocationFailed(nowUs()), false);
    if (this._relayFailureReported) return;
    this._relayFailureReported = true;
    this._emit('error', { kind: 'relay-unavailable', peer, reason: `TURN allocation failed: ${reason}` });
  }

  _serverLost(event) {
    // Where the page stands with each source: the next core resumes there
    // (nothing delivered twice, what was sent meanwhile is pulled).
    if (this._core) this._deliveryPositions = this._core.deliveryPositions();
    this._input((core) => core.serverLost(nowUs()));
    this._disposeCore();
    this._emit('error', { kind: 'server-lost', code: event.code, reason: event.reason || `closed (${event.code})` });
    this._emit('close', { code: event.code, reason: event.reason });
    if (!this._reconnect) {
      this._left = true;
      this._dispose();
    } else {
      this._scheduleReconnect();
    }
    this._emit('change', this.snapshot());
  }

  _useNextUrl() {
    this._urlIndex = (this._urlIndex + 1) % this.urls.length;
    this.url = this.urls[this._urlIndex];
  }

  _scheduleReconnect(delayMs) {
    const base = Math.min(this._reconnectInitialMs * 2 ** Math.min(this._attempt, 16), this._reconnectMaxMs);
    const delay = delayMs ?? base * (0.75 + Math.random() / 2);
    ++this._attempt;
    this._reconnectTimer = setTimeout(async () => {
      this._reconnectTimer = null;
      if (this._left) return;
      this._useNextUrl();
      this._core = new this._module.MeshPeer({ ...this._coreOptions, seed: randomSeed() });
      this._core.resumeDelivery(this._deliveryPositions ?? []);
      this.id = 0;
      this._relayFailureReported = false;
      if (!this._ownIceServers) this.rtcConfig = { ...this.rtcConfig, iceServers: [] };  // the welcome's
      try {
        await this._connect(this._timeoutMs);
      } catch (error) {
        this._disposeCore();
        if (this._left) return;
        if (error.tokenRejected) {
          this._tokenRejected = true;
          this._emit('error', { kind: 'token-rejected', reason: error.message });
          this._emit('change', this.snapshot());
          return;
        }
        this._emit('error', { kind: 'server-unreachable', reason: error.message });
        this._scheduleReconnect();
        return;
      }
      if (this._left) return;
      this._attempt = 0;
      this._emit('joined', { id: this.id, url: this.url });
      this._emit('change', this.snapshot());
    }, delay);
  }

  // Feeds one input to the core and carries out the actions it returns.
  // Actions are run in order; an input made while carrying them out (e.g. a
  // broadcast from a message handler) queues its actions behind.
  _input(call, notify = true) {
    if (!this._core || this._left) return;
    let actions;
    try {
      actions = call(this._core);
    } catch (error) {
      this._log('core input failed', error);
      return;
    }
    for (const action of actions) this._queue.push(action);
    if (notify) this._changed();
    if (this._draining) return;
    this._draining = true;
    try {
      for (let i = 0; i < this._queue.length; ++i) this._carryOut(this._queue[i]);
    } finally {
      this._queue.length = 0;
      this._draining = false;
    }
  }

  _carryOut(action) {
    const link = action.link !== undefined ? this._links.get(action.link) : undefined;
    switch (action.type) {
      case 'send':
        if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(action.bytes);
        break;
      case 'open': {
        const created = this._newLink(action.link, action.peer, true);
        if (created) created.offer();
        break;
      }
      case 'accept': {
        const created = this._newLink(action.link, action.peer, false);
        if (created) created.accept(action.offer);
        break;
      }
      case 'answer':
        if (link) link.applyAnswer(action.answer);
        break;
      case 'candidate':
        if (link) link.addRemoteCandidate(action.candidate);
        break;
      case 'close':
        if (link) {
          this._links.delete(action.link);
          link.close();
        }
        break;
      case 'data':
        if (link && action.unreliable) link.sendUnreliable(action.bytes);
        else if (link) link.send(action.bytes);
        break;
      case 'measure-rtt':
        if (link) link.measureRtt();
        break;
      case 'ice-servers':
        // meshd's STUN/TURN servers (fresh TURN credentials at each welcome),
        // unless the application gave its own.
        if (!this._ownIceServers) this.rtcConfig = { ...this.rtcConfig, iceServers: action.servers };
        break;
      case 'deliver':
        this._emit('message', {
          from: action.from,
          data: action.payload,
          seq: action.seq,
          reliable: action.reliable,
          verified: action.verified,
          get text() { return textDecoder.decode(this.data); },
        });
        break;
      case 'gap':
        // Messages fromSeq..toSeq of `from` were lost for good; its next
        // messages follow.
        this._emit('gap', { from: action.from, fromSeq: action.fromSeq, toSeq: action.toSeq });
        break;
      case 'peer-joined':
      case 'peer-left':
        // The native callbacks' names (on_peer_joined...); 'peer' is the old one.
        this._emit(action.type, { peer: action.peer });
        this._emit('peer', { peer: action.peer, joined: action.type === 'peer-joined' });
        break;
      case 'link-up':
      case 'link-down':
        this._emit(action.type, { peer: action.peer });
        this._emit('link', { peer: action.peer, up: action.type === 'link-up' });
        break;
      case 'observer-command':
        this._emit('command', { from: action.from, body: action.body });
        break;
      case 'wake':
        this._wakeAt(action.at);
        break;
      case 'sign':
        this._sign(action);
        break;
      case 'verify':
        this._verify(action);
        break;
      default:
        this._log('unknown action', action);
    }
  }

  _newLink(id, peer, initiator) {
    try {
      const link = new RtcLink(this, id, peer, initiator);
      this._links.set(id, link);
      return link;
    } catch (error) {
      this._log('RTCPeerConnection failed', error);
      queueMicrotask(() => this._input((core) => core.linkClosed(nowUs(), id)));
      return null;
    }
  }

  _wakeAt(at) {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    if (!Number.isFinite(at)) return;
    const delayMs = Math.max(0, Math.ceil((at - nowUs()) / 1000));
    this._timer = setTimeout(() => {
      this._timer = null;
      this._input((core) => core.tick(nowUs()));
    }, delayMs);
  }

  _emit(event, detail) {
    const set = this._handlers.get(event);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(detail);
      } catch (error) {
        console.error(`p2pmesh: '${event}' handler threw`, error);
      }
    }
  }

  // Coalesces 'change' notifications to one per task.
  _changed() {
    if (this._changePending || !this._handlers.has('change')) return;
    this._changePending = true;
    setTimeout(() => {
      this._changePending = false;
      this._emit('change', this.snapshot());
    }, 0);
  }

  _dispose() {
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._disposeCore();
  }

  // Ends one connection's core: its timer, links and state.
  _disposeCore() {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    for (const link of this._links.values()) link.close();
    this._links.clear();
    if (this._core) {
      this._core.delete();
      this._core = null;
    }
  }

  _log(...args) {
    if (this._debug) console.debug('p2pmesh:', ...args);
  }
}
