// Runs before first paint (a classic script in <head>) so a stored theme never flashes.
try {
  const theme = localStorage.getItem("chatsite-theme");
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
} catch {
  // storage disabled: follow the system theme
}
