-- The build tree whose executable, example host and C test programs the
-- specs run: build/ by default, another one named by MOONGRAD_BUILD
-- (`make test-sanitize` sets build-san, its sanitized tree).
return os.getenv("MOONGRAD_BUILD") or "build"
