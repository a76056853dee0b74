# The CLI is imported under the guard: spawned roster workers re-import this module.
if __name__ == "__main__":
    from provision.cli import main

    main()
