// Typesets TeX with the MathJax of the course's website (site/node_modules, npm) and reports
// what it rejects. Reads a JSON list of {"tex": "...", "display": true|false} on stdin and
// writes a JSON list of the same length: null where MathJax accepted the TeX, else its error.
// site/mathjax-tex.json is the TeX configuration that the site (site/conf.py) uses too.
// Run by site/mathcheck.py; by hand: echo '[{"tex": "\\frac{a}{b", "display": false}]' | node site/mathcheck.js
"use strict";
const fs = require("fs");
const path = require("path");

const tex = JSON.parse(fs.readFileSync(path.join(__dirname, "mathjax-tex.json"), "utf8"));
// An error must surface as an exception, not as red text in the output.
tex.formatError = (jax, err) => {
  throw err;
};

async function main() {
  const items = JSON.parse(fs.readFileSync(0, "utf8"));
  const MathJax = await require(path.join(__dirname, "node_modules", "mathjax")).init({
    loader: { load: ["input/tex"] },
    tex,
    startup: { typeset: false },
  });
  const errors = [];
  for (const item of items) {
    try {
      await MathJax.tex2mmlPromise(item.tex, { display: Boolean(item.display) });
      errors.push(null);
    } catch (err) {
      errors.push(String((err && err.message) || err));
    }
  }
  process.stdout.write(JSON.stringify(errors));
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + "\n");
  process.exit(2);
});
