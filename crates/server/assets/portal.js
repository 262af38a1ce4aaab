// The portal works without JavaScript; this only wires the "print" buttons
// (a file, not an inline handler, so the Content-Security-Policy can forbid
// inline scripts).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
