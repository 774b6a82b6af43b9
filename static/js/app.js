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

//   <button class="nav-toggle" aria-controls="site-nav">  folds the navigation on a phone
// Without script the button stays hidden and the links stay open (the CSS keys on .js-nav).
(() => {
  const toggle = document.querySelector(".nav-toggle");
  const menu = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (!toggle || !menu) {
    return;
  }
  document.documentElement.classList.add("js-nav");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("open", open);
  });
})();

//   <button data-copy="#element-id">  copies that element's text (or value) to the clipboard
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  const source = document.querySelector(button.dataset.copy);
  if (!source || !navigator.clipboard) {
    return;
  }
  const text = "value" in source ? source.value : source.textContent.trim();
  navigator.clipboard.writeText(text).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    button.setAttribute("aria-live", "polite");
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  });
});

//   <form data-remedy-form> with <select name="remedy"> and fields in [data-remedy="a b"]
// shows only the chosen remedy's fields; without script every field shows, each labelled with
// the remedy it belongs to, and the server ignores the ones that do not apply.
function showRemedyFields(form) {
  const select = form.querySelector("[name='remedy']");
  const checked = form.querySelector("[name='remedy']:checked");
  const remedy = checked ? checked.value : select ? select.value : "";
  form.querySelectorAll("[data-remedy]").forEach((field) => {
    const wanted = field.dataset.remedy.split(" ").includes(remedy);
    field.hidden = !wanted;
    field.querySelectorAll("input, select, textarea").forEach((input) => {
      input.disabled = !wanted;
    });
  });
}
document.querySelectorAll("[data-remedy-form]").forEach(showRemedyFields);
document.addEventListener("change", (event) => {
  const form = event.target.closest("[data-remedy-form]");
  if (form && event.target.name === "remedy") {
    showRemedyFields(form);
  }
});
