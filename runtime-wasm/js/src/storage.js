// Where a user's text filter and reactions live: IndexedDB in browsers (one database, keyed by
// user), memory elsewhere. A store is any object with these async methods, so a page can bring its
// own (a server sync, encrypted storage):
//   loadFilter(user) -> string | null     saveFilter(user, state)     clearFilter(user)
//   addReaction(user, record)             reactions(user) -> record[]

const DB_NAME = 'spamlens';
const DB_VERSION = 1;

/** An in-memory store (Node, tests, private windows without IndexedDB). */
export class MemoryStore {
  constructor() {
    this.filters = new Map();
    this.log = new Map();
  }
  async loadFilter(user) {
    return this.filters.get(user) ?? null;
  }
  async saveFilter(user, state) {
    this.filters.set(user, state);
  }
  async clearFilter(user) {
    this.filters.delete(user);
  }
  async addReaction(user, record) {
    if (!this.log.has(user)) this.log.set(user, []);
    this.log.get(user).push(record);
  }
  async reactions(user) {
    return [...(this.log.get(user) ?? [])];
  }
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`spamlens: IndexedDB: ${req.error?.message ?? 'request failed'}`));
  });
}

/** IndexedDB: object store `filters` (user → state JSON) and `reactions` (records, indexed by user). */
export class IndexedDbStore {
  constructor(name = DB_NAME) {
    this.name = name;
    this.db = null;
  }

  async open() {
    if (this.db) return this.db;
    const req = indexedDB.open(this.name, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('filters')) db.createObjectStore('filters');
      if (!db.objectStoreNames.contains('reactions')) {
        db.createObjectStore('reactions', { autoIncrement: true }).createIndex('user', 'user');
      }
    };
    this.db = await request(req);
    return this.db;
  }

  async store(name, mode) {
    return (await this.open()).transaction(name, mode).objectStore(name);
  }

  async loadFilter(user) {
    return (await request((await this.store('filters', 'readonly')).get(user))) ?? null;
  }
  async saveFilter(user, state) {
    await request((await this.store('filters', 'readwrite')).put(state, user));
  }
  async clearFilter(user) {
    await request((await this.store('filters', 'readwrite')).delete(user));
  }
  async addReaction(user, record) {
    await request((await this.store('reactions', 'readwrite')).add({ ...record, user }));
  }
  async reactions(user) {
    const index = (await this.store('reactions', 'readonly')).index('user');
    return request(index.getAll(user));
  }
}

/** The default store: IndexedDB where it exists, else memory. */
export function defaultStore() {
  return typeof indexedDB === 'object' && indexedDB ? new IndexedDbStore() : new MemoryStore();
}
