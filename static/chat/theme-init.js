// Runs before first paint (a classic script in <head>) so the theme never flashes:
// the stored choice, else the system's. The CSS keys on data-theme alone.
(() => {
  let theme = null;
  try {
    theme = localStorage.getItem("chatsite-theme");
  } catch {
    // storage disabled: follow the system theme
  }
  if (theme !== "light" && theme !== "dark") {
    theme = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  document.documentElement.dataset.theme = theme;
})();
