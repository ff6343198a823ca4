from viscover.cli.app import main

if __name__ == "__main__":  # guard: embedding workers are spawned and re-import __main__
    main()
