// @ts-check
// Incremental SHA-256 (FIPS 180-4), for what WebCrypto cannot hash: a file
// or a ciphertext too large to hold, read a piece at a time. WebCrypto's
// digest takes only a whole buffer. This one is written for V8's
// interpreter (Tor Browser's Safer level runs without JIT): the rounds call
// no function, and the state lives in local variables, which makes it about
// twice as fast there as @noble/hashes, whose rounds call rotr. Checked
// against node:crypto in test/sha256.test.mjs.

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

// Sha256 hashes bytes given in any number of update calls.
export class Sha256 {
  constructor() {
    this.h = new Int32Array(IV);
    this.w = new Int32Array(64);
    this.buf = new Uint8Array(64); // a partial block
    this.used = 0; // bytes in buf
    this.length = 0; // bytes hashed in all
    this.done = false;
  }

  // blocks runs the compression function over the 64-byte blocks of b from
  // off to end.
  /**
   * @param {Uint8Array} b
   * @param {number} off
   * @param {number} end
   */
  blocks(b, off, end) {
    const H = this.h;
    const W = this.w;
    let h0 = H[0], h1 = H[1], h2 = H[2], h3 = H[3], h4 = H[4], h5 = H[5], h6 = H[6], h7 = H[7];
    for (; off < end; off += 64) {
      for (let i = 0, j = off; i < 16; i++, j += 4) {
        W[i] = (b[j] << 24) | (b[j + 1] << 16) | (b[j + 2] << 8) | b[j + 3];
      }
      for (let i = 16; i < 64; i++) {
        const x = W[i - 15];
        const y = W[i - 2];
        W[i] =
          ((((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
            (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) +
            W[i - 7] +
            W[i - 16]) |
          0;
      }
      let a = h0, bb = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
      for (let i = 0; i < 64; i++) {
        const t1 =
          (h +
            (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
            ((e & f) ^ (~e & g)) +
            K[i] +
            W[i]) |
          0;
        const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
        h = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = bb;
        bb = a;
        a = (t1 + t2) | 0;
      }
      h0 = (h0 + a) | 0;
      h1 = (h1 + bb) | 0;
      h2 = (h2 + c) | 0;
      h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0;
      h5 = (h5 + f) | 0;
      h6 = (h6 + g) | 0;
      h7 = (h7 + h) | 0;
    }
    H[0] = h0;
    H[1] = h1;
    H[2] = h2;
    H[3] = h3;
    H[4] = h4;
    H[5] = h5;
    H[6] = h6;
    H[7] = h7;
  }

  // update hashes more bytes.
  /** @param {Uint8Array} b @returns {this} */
  update(b) {
    if (this.done) {
      throw new Error("sha256: update after digest");
    }
    this.length += b.length;
    let off = 0;
    if (this.used > 0) {
      const n = Math.min(64 - this.used, b.length);
      this.buf.set(b.subarray(0, n), this.used);
      this.used += n;
      off = n;
      if (this.used < 64) {
        return this;
      }
      this.blocks(this.buf, 0, 64);
      this.used = 0;
    }
    const whole = off + ((b.length - off) & ~63);
    this.blocks(b, off, whole);
    if (whole < b.length) {
      this.buf.set(b.subarray(whole), 0);
      this.used = b.length - whole;
    }
    return this;
  }

  // digest pads the message and returns the 32-byte hash; the hasher is
  // then spent.
  /** @returns {Uint8Array} */
  digest() {
    if (this.done) {
      throw new Error("sha256: digest twice");
    }
    this.done = true;
    const bits = this.length * 8; // exact below 2^53
    const pad = new Uint8Array(this.used < 56 ? 64 : 128);
    pad.set(this.buf.subarray(0, this.used), 0);
    pad[this.used] = 0x80;
    const hi = Math.floor(bits / 0x100000000);
    const lo = bits >>> 0;
    const n = pad.length;
    pad[n - 8] = hi >>> 24;
    pad[n - 7] = hi >>> 16;
    pad[n - 6] = hi >>> 8;
    pad[n - 5] = hi;
    pad[n - 4] = lo >>> 24;
    pad[n - 3] = lo >>> 16;
    pad[n - 2] = lo >>> 8;
    pad[n - 1] = lo;
    this.blocks(pad, 0, n);
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      const v = this.h[i];
      out[4 * i] = v >>> 24;
      out[4 * i + 1] = v >>> 16;
      out[4 * i + 2] = v >>> 8;
      out[4 * i + 3] = v;
    }
    return out;
  }
}
