// @ts-check
// Handing control back to the page during long work (hashing, encrypting),
// so that the progress bar is drawn and the page answers: a chain of
// promises that resolve at once (a Blob's stream with its bytes at hand)
// never lets the browser run a task otherwise.

// Encryption hands control back to the page this often (milliseconds), so
// that the progress bar moves: without JIT, typage takes about 0.6 s per MiB.
export const SLICE_MS = 50;

// yielder returns a function that waits for the next task. A MessageChannel
// is not throttled in a background tab as setTimeout is.
/** @returns {(() => Promise<void>) & {close: () => void}} */
export function yielder() {
  if (typeof MessageChannel === "function") {
    const ch = new MessageChannel();
    /** @type {Array<(value: void) => void>} */
    const waiting = [];
    // Never empty: each message follows a push.
    ch.port1.onmessage = () => /** @type {(value: void) => void} */ (waiting.shift())();
    const wait = () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        ch.port2.postMessage(0);
      });
    wait.close = () => {
      ch.port1.close();
      ch.port2.close();
    };
    return wait;
  }
  const wait = () => new Promise((resolve) => setTimeout(resolve, 0));
  wait.close = () => {};
  return wait;
}


// ticker returns a function that waits for the next task when SLICE_MS
// have passed since it last did, and otherwise returns at once.
/** @returns {(() => Promise<void>) & {close: () => void}} */
export function ticker() {
  const pause = yielder();
  let last = Date.now();
  const tick = async () => {
    if (Date.now() - last >= SLICE_MS) {
      await pause();
      last = Date.now();
    }
  };
  tick.close = pause.close;
  return tick;
}
