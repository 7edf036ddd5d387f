// The browser's time zone, for pages of people who did not choose one (preferences): a cookie the server reads.
(function () {
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    // IANA names need no escaping ("Asia/Shanghai"); anything else is not a zone name
    if (zone && /^[A-Za-z0-9_+\/-]{1,64}$/.test(zone) && !document.cookie.split("; ").includes("rollgate_tz=" + zone)) {
      document.cookie = "rollgate_tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (error) { /* no Intl: times stay in UTC */ }
})();
