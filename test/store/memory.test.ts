import { MemoryStore } from '../../src/store/memory.js';
import { storeContract } from './contract.js';

storeContract({ name: 'memory', open: () => Promise.resolve(new MemoryStore()) });
