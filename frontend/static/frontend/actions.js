// Release actions: every button opens one <dialog> that names what will happen and takes a comment (required for
// a rejection). Confirming posts through htmx; the answer re-renders the release body with the outcome, and the
// live event the service sends on commit re-renders it for everyone else watching.
(function () {
  function setup() {
    const dialog = document.getElementById("confirm-action");
    if (!dialog) return;
    const form = document.getElementById("confirm-form");
    const text = document.getElementById("confirm-text");
    const title = document.getElementById("confirm-title");
    const comment = document.getElementById("confirm-comment");
    const label = document.getElementById("confirm-comment-label");
    const weight = document.getElementById("confirm-weight");
    const evidence = document.getElementById("confirm-evidence");
    const ok = document.getElementById("confirm-ok");
    function checkComment() {
      const missing = comment.required && !comment.value.trim();
      comment.setCustomValidity(missing ? "a rejection needs a reason" : "");
      return !missing;
    }

    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button || button.disabled) return;
      const required = button.dataset.commentRequired === "1";
      title.textContent = button.textContent.trim();
      text.textContent = button.dataset.confirm;
      form.action = button.dataset.url;
      form.dataset.action = button.dataset.action;
      weight.value = button.dataset.expectedWeight || "";
      // Approvals are bound to the evidence shown on the page: the server refuses them if it changed since.
      if (evidence) evidence.value = button.dataset.evidenceDigest || "";
      comment.value = "";
      comment.required = required;
      checkComment();
      label.textContent = required ? "Reason (required)" : "Comment (optional)";
      ok.textContent = button.textContent.trim();
      ok.className = button.classList.contains("danger") || button.dataset.action === "reject" ? "danger" : "primary";
      dialog.showModal();
      comment.focus();
    });
    document.getElementById("confirm-cancel").addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      if (!checkComment()) {  // whitespace passes "required"; this does not
        event.preventDefault();
        comment.reportValidity();
        return;
      }
      if (!window.htmx) return;  // no htmx: plain POST, the server redirects back to the page
      event.preventDefault();
      const values = Object.fromEntries(new FormData(form).entries());
      dialog.close();
      htmx.ajax("POST", form.action, {source: "#release", target: "#release", swap: "innerHTML", values: values});
    });
    comment.addEventListener("input", checkComment);
  }
  document.addEventListener("DOMContentLoaded", setup);
})();
