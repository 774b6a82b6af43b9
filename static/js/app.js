// TradeAssure's page behaviour, in a file because the CSP allows no inline script or handler.
//   <button data-confirm="Really?">  asks before the click goes through
//   <select data-autosubmit>        submits its form when the choice changes
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
});
document.addEventListener("change", (event) => {
  const target = event.target.closest("[data-autosubmit]");
  if (target && target.form) {
    target.form.submit();
  }
});
