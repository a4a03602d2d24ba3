// The sample shop (/embed/demo/) lists the events the consultation widget sends it.
(() => {
  const list = document.querySelector("[data-demo-events]");
  const names = ["queued", "position", "in-call", "ended", "refused"];
  for (const name of names) {
    window.addEventListener(`consult:${name}`, (event) => {
      list.querySelector(".none")?.remove();
      const item = document.createElement("li");
      const detail = event.detail && Object.keys(event.detail).length ? ` ${JSON.stringify(event.detail)}` : "";
      item.textContent = `consult:${name}${detail}`;
      list.append(item);
    });
  }
})();
