// The Azure Bot resource for Implementeringsassistenten, with its Microsoft Teams channel.
// Used by ../azure.bicep as a module; it can also be deployed alone for a bot hosted outside Azure (readme.md).
//
// Identity: UserAssignedMSI only. Azure has not created multi-tenant bots since 31 July 2025, and a
// user-assigned managed identity needs no secret: msaAppId is the identity's CLIENT id (the same GUID the
// app gets as MicrosoftAppId), msaAppMSIResourceId its resource id, msaAppTenantId its tenant.

@minLength(4)
@maxLength(20)
@description('Used to name the bot resource (a bot name is globally unique)')
param resourceBaseName string

@maxLength(42)
@description('Display name of the Azure Bot resource (Teams shows the name from the app package)')
param botDisplayName string

@description('Name of the Azure Bot resource')
param botServiceName string = resourceBaseName

@allowed([
  'F0'
  'S1'
])
@description('F0: free (standard channels such as Teams are unlimited; premium channels are capped). S1: paid')
param botServiceSku string = 'F0'

@description('Resource id of the user-assigned managed identity the bot authenticates as')
param identityResourceId string

@description('Client id (not the principal/object id) of that identity: the bot\'s Microsoft App ID')
param identityClientId string

@description('Tenant id of that identity')
param identityTenantId string

@description('Host name that serves /api/messages, e.g. kombitabc123-app.azurewebsites.net (no scheme, no path)')
param botAppDomain string

resource botService 'Microsoft.BotService/botServices@2022-09-15' = {
  name: botServiceName
  location: 'global'
  kind: 'azurebot'
  sku: {
    name: botServiceSku
  }
  properties: {
    displayName: botDisplayName
    endpoint: 'https://${botAppDomain}/api/messages'
    msaAppType: 'UserAssignedMSI'
    msaAppId: identityClientId
    msaAppTenantId: identityTenantId
    msaAppMSIResourceId: identityResourceId
  }
}

// Connect the bot to Microsoft Teams.
resource botServiceMsTeamsChannel 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: botService
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
  }
}

output BOT_SERVICE_NAME string = botService.name
output BOT_ENDPOINT string = botService.properties.endpoint
