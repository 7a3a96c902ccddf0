// esbuild's text loader (package.json's build script) makes a .txt import
// the file's text: src/lib/words.js embeds crypto/receipt-words.txt so.
declare module "*.txt" {
  const text: string;
  export default text;
}
