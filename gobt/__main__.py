try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while gobt starts: end as main() would
    raise SystemExit(130) from None

main()
