// esbuild emits the .wasm (--loader:.wasm=file, hashed name) and gives its
// path relative to the bundle; locateFile hands the loader the full URL.
import wasmUrl from 'p2pmesh/p2pmesh.wasm';
import { start } from './app.js';

start({ locateFile: () => new URL(wasmUrl, import.meta.url).href });
