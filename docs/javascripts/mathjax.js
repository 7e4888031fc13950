// MathJax 3. Markdown pages: pymdownx.arithmatex (generic mode) wraps the maths, written
// \( ... \) inline and \[ ... \] or $$ ... $$ display, in elements of class "arithmatex",
// and only those are typeset (so a "$VAR" in a guide is left alone). Tutorial pages
// (notebooks rendered by mkdocs-jupyter) keep Jupyter's $ ... $ / $$ ... $$ delimiters
// in plain paragraphs, so there the whole page is typeset (code is skipped anyway).
const notebookPage = location.pathname.includes("/tutorials/");

window.MathJax = {
  tex: {
    inlineMath: notebookPage ? [["$", "$"], ["\\(", "\\)"]] : [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: notebookPage ? {} : {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  }
};

document$.subscribe(() => {
  MathJax.startup.output.clearCache()
  MathJax.typesetClear()
  MathJax.texReset()
  MathJax.typesetPromise()
})
