// An embedded site's admin page: "Copy" puts the snippet on the clipboard.
(() => {
  const box = document.getElementById("embed-snippet");
  const button = document.querySelector("[data-copy-snippet]");
  const done = document.querySelector("[data-copied]");
  if (!box || !button) return;
  box.addEventListener("focus", () => box.select());
  button.addEventListener("click", async () => {
    box.select();
    try {
      await navigator.clipboard.writeText(box.value);
    } catch {
      document.execCommand("copy");
    }
    done.hidden = false;
  });
})();
