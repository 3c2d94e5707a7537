// MathJax 3 settings for pymdownx.arithmatex (generic mode): typeset only the spans and divs
// arithmatex marks, with \( \) inline and \[ \] display delimiters. Equation numbers come only
// from explicit \tag{S…}, the tags cited in the code and the tests.
// Loaded before javascripts/tex-mml-svg.js, the MathJax file vendored at build time.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "none"
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  },
  svg: { fontCache: "global" }
};
