from tickstock.cli.main import main

main()
