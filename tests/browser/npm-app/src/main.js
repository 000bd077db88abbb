// Default: the loader fetches new URL('p2pmesh.wasm', import.meta.url), i.e.
// next to this bundle; the build copies node_modules/p2pmesh/p2pmesh.wasm there.
import { start } from './app.js';

start();
