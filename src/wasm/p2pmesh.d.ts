// Type declarations of p2pmesh.mjs, the browser peer of p2pmesh.
// Usage:
//   import { Mesh } from '/p2pmesh.mjs';
//   const mesh = await Mesh.join({ group: 'room' });
//   mesh.on('message', (m) => console.log(m.from, m.text));
//   mesh.broadcast('hello');

export type PeerId = number;

/** Largest payload of one broadcast, in bytes (it must fit through the server). */
export declare const MAX_PAYLOAD_BYTES: number;

export interface JoinOptions {
  /** WebSocket URL of meshd, default ws(s)://<this page's host>/service. */
  url?: string;
  /** Several meshd URLs: join tries them in order; reconnections go along the list. */
  urls?: string[];
  /** Reconnect after a lost connection, with backoff (default true). */
  reconnect?: boolean;
  /** First reconnection delay, doubled up to reconnectMaxMs, ±25% (default 250, 8000). */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /** Group (room) name, default 'default': 1-64 of A-Z a-z 0-9 _ - (else join throws TypeError). */
  group?: string;
  /** Links this peer tries to hold (default 4). */
  targetConnections?: number;
  /** Offers are accepted up to this many links (default 6). */
  maxConnections?: number;
  /** A link not open after this long is dropped (default 3500). */
  linkTimeoutMs?: number;
  /** Full status re-published this often (default 10000). */
  statusIntervalMs?: number;
  /** A silent member without links is forgotten after this long (default 60000, 0 = never). */
  memberTimeoutMs?: number;
  /** A peer that refused or dropped a link is not dialled again for this long (default 10000). */
  candidateBackoffMs?: number;
  /** Keep-alive ping on links with peers of our protocol, also measures RTT (default 1000). */
  pingIntervalMs?: number;
  /** A link silent this long is closed (default 2000). */
  deadLinkTimeoutMs?: number;
  /**
   * Reliable delivery: messages are kept this long for others to pull, and a
   * hole nobody repaired within it becomes a 'gap' event (default 20000).
   */
  historyAgeMs?: number;
  /** Publish this peer's state report on `<group>.report` this often, for observers (default 0 = off). */
  reportIntervalMs?: number;
  /** Accept observer commands on `<group>.<id>.command` as 'command' events (default false). */
  observerCommands?: boolean;
  /** Send each child only its part of the tree (default true). */
  pruneRoutes?: boolean;
  /** Peers the tree cannot reach get the message through the server (default true). */
  fallback?: boolean;
  /** Largest packet accepted from a link or the server (default 1 MiB). */
  maxPacketBytes?: number;
  /** Broadcast tree: 'blend' (default, over measured link RTTs), 'latency' or 'unit' (the reference's). */
  treeMode?: 'unit' | 'latency' | 'blend';
  /** 'blend' only: 0 = Prim's MST, 1 = shortest-path tree (default 0.8). */
  treeAlpha?: number;
  /** 'latency'/'blend': no peer more than this many hops from the sender unless the mesh is that wide (default 9). */
  treeMaxDepth?: number;
  /** Seed of the core's randomness (default: from crypto.getRandomValues). */
  seed?: number;
  /**
   * ICE servers for RTCPeerConnection. Default: the STUN/TURN servers meshd
   * hands out in its welcome (meshd --stun/--turn; TURN credentials fresh at
   * every connection), none if it has none. Given, they replace meshd's.
   */
  iceServers?: RTCIceServer[];
  /** Full RTCPeerConnection configuration (overrides iceServers). */
  rtcConfig?: RTCConfiguration;
  /** Local candidates for which this returns false are not signalled. */
  candidateFilter?: (candidate: RTCIceCandidateInit) => boolean;
  /** Rejects if no welcome arrives within this time (default 10000). */
  timeoutMs?: number;
  /**
   * meshd --auth-key: the JWT from the application's auth server, sent as
   * `?token=` on every connection. A refused token makes join() reject
   * ("token refused ... (HTTP 401: token expired)"), or, on a reconnection,
   * emits 'error' token-rejected and stops retrying until setToken().
   */
  token?: string;
  /**
   * Group policy (docs/security.md): unsigned and badly signed broadcasts,
   * and those of members that announced no key, are dropped and counted
   * (unsignedDropped, badSignatures). Announced in the status; adopted from
   * any member that announces it. Default false: unsigned messages (reference
   * peers) arrive with `verified: false`.
   */
  requireSignatures?: boolean;
  /**
   * Every broadcast is signed with an Ed25519 key (WebCrypto; join() rejects
   * with a clear error where the browser or an insecure context lacks it).
   * `keyPair`: the application's own (generateSigningKeyPair(), e.g. for a
   * token's `pk` claim); default a fresh one. `sign: false` joins unsigned.
   */
  keyPair?: CryptoKeyPair;
  sign?: boolean;
  /** Logs driver details with console.debug. */
  debug?: boolean;
  /** Passed to the Emscripten module factory (first join of the page only). */
  moduleOptions?: Record<string, unknown>;
}

/** How a broadcast travels (docs/browser.md has the guarantees of each mode). */
export interface BroadcastOptions {
  /**
   * true (the default): each receiver gets a sender's messages in the order
   * sent, exactly once, or a 'gap' event; later messages wait for a lost one.
   * false (real-time state): down the same tree on a second data channel per
   * link, unordered, never retransmitted; at most once, as it comes, no gap
   * events. Numbered apart from the reliable ones (MeshMessage.seq).
   */
  reliable?: boolean;
}

export interface MeshMessage {
  /** Id of the peer that broadcast it. */
  from: PeerId;
  data: Uint8Array;
  /**
   * Its number at the sender (what the sender's broadcast() returned; from 1
   * each session); 0 when the sender sends none (a reference peer).
   */
  seq: number;
  /**
   * Delivery mode: reliable messages of a sender come in the order sent,
   * exactly once, or after a 'gap' event naming those lost for good;
   * unreliable ones ({reliable: false}) as they came, never behind a
   * reliable one.
   */
  reliable: boolean;
  /**
   * Signed by the sender's announced key and the signature checked out;
   * false: unsigned (a reference peer) or the sender announced no key.
   */
  verified: boolean;
  /** data decoded as UTF-8. */
  readonly text: string;
}

export interface PeerEvent { peer: PeerId; joined: boolean; }
export interface LinkEvent { peer: PeerId; up: boolean; }
export interface CloseEvent { code: number; reason: string; }
/**
 * Something went wrong, with the reason in words; the mesh recovers by itself
 * (it reconnects and re-links). server-lost: the connection closed after the
 * welcome (code, reason from the server); server-unreachable: a reconnection
 * failed; link-failed: a WebRTC link failed (peer); send-queue-full: a
 * broadcast was dropped on `dropped` links whose send queue was full;
 * relay-unavailable: a TURN server refused or did not answer a relay
 * allocation (e.g. expired credentials): links that need a relay will not
 * form (once per server session; counted in relayAllocationFailures);
 * token-rejected: meshd refused the token on a reconnection (reason: "token
 * expired", ...): no more retries until setToken().
 */
export interface MeshErrorEvent {
  kind: 'server-lost' | 'server-unreachable' | 'link-failed' | 'send-queue-full' | 'relay-unavailable'
    | 'token-rejected';
  reason: string;
  code?: number;
  peer?: PeerId;
  seq?: number;
  dropped?: number;
}
/** Connected again after a lost connection, with a new id. */
export interface JoinedEvent { id: PeerId; url: string; }
export interface ObserverCommandEvent { from: PeerId; body: string; }

export interface MeshViewSnapshot {
  self: PeerId;
  /** Every peer of the group this peer knows, itself included, sorted. */
  peers: PeerId[];
  /** Undirected links [a, b, rttUs] with a < b (rttUs 0 = unknown). */
  links: [PeerId, PeerId, number][];
  /** Neighbours of each peer, keyed by id. */
  adjacency: Record<string, PeerId[]>;
}

export interface LinkInfo {
  link: number;
  peer: PeerId;
  initiated: boolean;
  open: boolean;
  rttUs: number;
  /**
   * The selected ICE candidate pair's path, by its costliest end: 'relay'
   * (through TURN: the operator pays its bandwidth), 'srflx' / 'prflx'
   * (through a NAT mapping), 'host' (direct); 'unknown' until ICE has chosen.
   */
  candidateType: 'host' | 'srflx' | 'prflx' | 'relay' | 'unknown';
  /** The second data channel (unreliable broadcasts) is open: it opens on first use. */
  unreliableChannel: boolean;
}

export interface TreeSnapshot { root: PeerId; edges: [PeerId, PeerId][]; }

/**
 * counters(): every counter of the core (MeshCounters, the native
 * PeerSnapshot::Counters and the state reports' names in camelCase) and the
 * driver's. Per join: a new Mesh starts at 0.
 */
export interface MeshCounters {
  // The driver's.
  /** Undecodable frames from the server. */
  malformedFrames: number;
  /** Packets dropped: a link's send queue was full. */
  sendQueueDrops: number;
  // The core's drops, by reason.
  /** Undecodable packets. */
  malformedPackets: number;
  /** Route not a tree rooted at the source. */
  badRoutes: number;
  /** Not sent by our parent in the route. */
  misroutedPackets: number;
  /** (source, seq) seen before. */
  duplicatePackets: number;
  /** Undecodable mesh status updates. */
  malformedUpdates: number;
  /** Status of another peer than its sender. */
  forgedUpdates: number;
  /** Status not newer than the last one. */
  staleUpdates: number;
  /** Offer/answer/candidate that fits no link. */
  badSignals: number;
  /** Topic of another group or of unknown form. */
  foreignTopics: number;
  /** Route children this peer cannot reach (not linked, not members, or over budget). */
  droppedHops: number;
  /** Payloads over MAX_PAYLOAD_BYTES (0: broadcast() throws first). */
  oversizedBroadcasts: number;
  /** Publications over the server's message limit. */
  oversizedPublishes: number;
  // The core's traffic and link life.
  broadcasts: number;
  delivered: number;
  /** Packets forwarded on links. */
  relayed: number;
  /** Packets sent through the server. */
  fallbackSent: number;
  fallbackReceived: number;
  offersRefused: number;
  linksOpened: number;
  /** Not open within linkTimeoutMs. */
  linksTimedOut: number;
  /** Keep-alive silent too long. */
  linksDead: number;
  /** Packets re-sent after their link closed (to the neighbour through the server, or to its children). */
  repaired: number;
  linksDroppedForRoom: number;
  /** TURN allocations refused or unanswered (e.g. expired credentials). */
  relayAllocationFailures: number;
  /** Messages that waited for older ones of their sender (reliable delivery). */
  heldForOrder: number;
  /** 'gap' events: messages lost for good. */
  gaps: number;
  /** Copies that came after their gap was reported. */
  lateAfterGap: number;
  /** Sequence numbers implausibly far ahead, dropped. */
  seqJumps: number;
  /** "I have" messages sent to neighbours (gap repair). */
  announcementsSent: number;
  /** Requests for missing messages. */
  pullsSent: number;
  /** Copies sent to peers that asked. */
  pullsServed: number;
  /** Asked for what this peer no longer holds. */
  pullsUnanswerable: number;
  /** Broadcasts dropped unsigned: from a member that announced a key (stripped), or, with requireSignatures, from one without a key. */
  unsignedDropped: number;
  /** Broadcasts whose signature did not verify (forged or altered): dropped. */
  badSignatures: number;
  /** Broadcasts dropped because too many awaited their signature check. */
  verifyBacklogDrops: number;
  /** Signed broadcasts whose signature was checked (WebCrypto Ed25519). */
  signaturesChecked: number;
  /** Signed broadcasts that came straight from their source: delivered verified without a check (docs/security.md). */
  signaturesFromSource: number;
}

/** Messages fromSeq..toSeq of `from` were lost for good (no peer could repair them). */
export interface GapEvent { from: PeerId; fromSeq: number; toSeq: number; }

export interface MeshState {
  id: PeerId;
  group: string;
  url: string;
  joined: boolean;
  view: MeshViewSnapshot;
  links: LinkInfo[];
  tree: TreeSnapshot;
  /** {} when not joined (after leave() or a close). */
  counters: MeshCounters | Record<string, never>;
}

export interface MeshEvents {
  message: MeshMessage;
  /** Reliable messages of a sender that can no longer be repaired: never silence. */
  gap: GapEvent;
  'peer-joined': { peer: PeerId };
  'peer-left': { peer: PeerId };
  'link-up': { peer: PeerId };
  'link-down': { peer: PeerId };
  /** @deprecated use 'peer-joined' / 'peer-left' (kept for one release). */
  peer: PeerEvent;
  /** @deprecated use 'link-up' / 'link-down' (kept for one release). */
  link: LinkEvent;
  /** The state may have changed (coalesced, at most once per task). */
  change: MeshState;
  /** The server connection closed without leave(); the mesh reconnects unless `reconnect: false`. */
  close: CloseEvent;
  /** Joined again after a lost connection (new id). */
  joined: JoinedEvent;
  error: MeshErrorEvent;
  /** An observer (dashboard) sent this peer a command on `<group>.<id>.command` (opt-in in the core). */
  command: ObserverCommandEvent;
}

export declare class Mesh {
  /** Not constructible: `await Mesh.join(options)`. */
  private constructor();
  /** Connects, waits for the server's welcome and returns the joined mesh. */
  static join(options?: JoinOptions): Promise<Mesh>;
  /** This peer's id, given by the server. */
  readonly id: PeerId;
  /** Our Ed25519 public key (32 bytes; null with sign: false); a token's `pk` claim is its base64url. */
  readonly publicKey: Uint8Array | null;
  readonly group: string;
  readonly url: string;
  /**
   * Sends to every member of the group; returns the message's sequence number.
   * Throws RangeError over MAX_PAYLOAD_BYTES (48 KiB).
   */
  broadcast(data: Uint8Array | ArrayBuffer | ArrayBufferView | string,
            options?: BroadcastOptions): number;
  on<K extends keyof MeshEvents>(event: K, handler: (event: MeshEvents[K]) => void): () => void;
  off<K extends keyof MeshEvents>(event: K, handler: (event: MeshEvents[K]) => void): void;
  view(): MeshViewSnapshot;
  links(): LinkInfo[];
  tree(): TreeSnapshot;
  /** Every counter (MeshCounters); {} when not joined (after leave() or a close). */
  counters(): MeshCounters | Record<string, never>;
  /** Everything worth reporting about this peer (the native Peer::snapshot()). */
  snapshot(): MeshState;
  /** @deprecated the same as snapshot() (kept for one release). */
  state(): MeshState;
  /** Extra facts (JSON-serialisable) added to this peer's state reports. */
  setReportInfo(info: unknown): void;
  /** Tells the group, closes every link and the socket; resolves once closed. */
  leave(): Promise<void>;
  /** A new token for the next connections; after 'token-rejected' it reconnects. */
  setToken(token: string): void;
}

/** A fresh Ed25519 key pair (WebCrypto) for Mesh.join({keyPair}). */
export declare function generateSigningKeyPair(): Promise<CryptoKeyPair>;
/** Loads the WebAssembly module (done by the first join of a page). */
export declare function loadP2pmesh(moduleOptions?: Record<string, unknown>): Promise<unknown>;
/** The defaults of Mesh.join's options: the core's (MeshConfig), the only copy. */
export declare function defaultOptions(
  moduleOptions?: Record<string, unknown>,
): Promise<Required<Pick<JoinOptions, 'group' | 'targetConnections' | 'maxConnections' |
  'linkTimeoutMs' | 'statusIntervalMs' | 'memberTimeoutMs' | 'candidateBackoffMs' |
  'pingIntervalMs' | 'deadLinkTimeoutMs' | 'historyAgeMs' | 'reportIntervalMs' | 'observerCommands' |
  'pruneRoutes' | 'fallback' | 'maxPacketBytes' | 'treeMode' | 'treeAlpha' | 'treeMaxDepth'>> &
  { maxPayloadBytes: number }>;

/** The Emscripten module factory. */
declare function createP2pmeshModule(moduleOptions?: Record<string, unknown>): Promise<unknown>;
export default createP2pmeshModule;
