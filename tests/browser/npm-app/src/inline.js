// The .wasm inlined in the bundle (--loader:.wasm=binary: a Uint8Array): no
// second request.
import wasmBinary from 'p2pmesh/p2pmesh.wasm';
import { start } from './app.js';

start({ wasmBinary });
