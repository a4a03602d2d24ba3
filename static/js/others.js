/**
 * After a refusal (or the consultant going offline): the other consultants who
 * take calls now, each a link to their call page, so the caller is not stranded.
 */

const LABEL = { online: "online", busy: "in a call", away: "away" };

export function showOthers(panel, consultants, ownSlug) {
  const others = consultants.filter((c) => c.slug !== ownSlug && c.status !== "offline");
  const items = others.map((consultant) => {
    const link = document.createElement("a");
    link.href = `/call/${encodeURIComponent(consultant.slug)}/`;
    const name = document.createElement("bdi");
    name.textContent = consultant.name;
    link.append(name, ` (${LABEL[consultant.status] || consultant.status})`);
    const item = document.createElement("li");
    item.append(link);
    return item;
  });
  panel.querySelector("[data-others-list]").replaceChildren(...items);
  panel.hidden = items.length === 0;
}
