// The viewer's time zone for the pages' dates and times (consult/timezones.py):
// the browser's IANA name, kept in a cookie. A classic script: no data from
// the page, nothing to wait for.
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  const value = encodeURIComponent(zone);
  if (!document.cookie.split("; ").includes(`consult_tz=${value}`)) {
    document.cookie = `consult_tz=${value}; path=/; max-age=31536000; samesite=lax`;
  }
})();
