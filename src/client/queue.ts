/** The client's FIFO is the shared one (src/util/fifo.ts). */
export { Fifo as Deque } from '../util/fifo.js';
