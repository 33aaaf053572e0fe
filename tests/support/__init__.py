"""What the tests share: the fake Discord, the bot and burst kits, the fake renderer, the engine start probe."""
