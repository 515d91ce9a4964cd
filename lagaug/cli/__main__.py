from lagaug.cli.main import main

main()
