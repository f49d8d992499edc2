"""Matter appliances in the discovery inbox: commissionable adverts in, commissioning through matter-server out."""
